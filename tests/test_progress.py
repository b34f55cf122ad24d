"""Long work shows progress on standard error when it is a terminal, and nothing when
it is piped: `symgrad check` over many points and `symgrad generate` of a large
expression, run as a user runs them, with standard error on a pseudo-terminal (the
`pty` module) or on a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# about 5500 operations: seconds to generate, well past the bar's delay
LARGE = " + ".join(
    f"sin(x*{i}) * exp(-y/{i + 1}) + relu(x - {i}*y)" for i in range(700)
)
CHECK = ["check", "sin(x)*exp(-y) + relu(x - y)", "--points", "300"]


def _env() -> dict[str, str]:
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))


def _symgrad(args: list[str], cwd: Path, stdin: str = "", terminal: bool = False):
    """Run `symgrad ARGS`; standard error on a pseudo-terminal or a pipe. Returns
    (exit status, standard output, standard error)."""
    argv = [sys.executable, "-m", "symgrad.cli", *args]
    if not terminal:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, cwd=cwd, env=_env()
        )
        return done.returncode, done.stdout, done.stderr
    pytest.importorskip("tqdm")  # a dependency of symgrad: installed with it
    leader, follower = pty.openpty()
    # a terminal of 24 rows and 100 columns (a new pty has none: nothing fits)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=cwd,
        env=_env(),
    )
    os.close(follower)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(stdin.encode())
    process.stdin.close()
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the terminal's other side is closed, the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    out = process.stdout.read().decode()
    status = process.wait(timeout=300)
    return status, out, b"".join(chunks).decode(errors="replace")


def test_check_shows_its_progress_on_a_terminal(tmp_path: Path) -> None:
    status, out, err = _symgrad(CHECK, tmp_path, terminal=True)
    assert status == 0, err
    assert "agreement: all checks pass" in out
    for shown in ("finite differences", "point/s", "%|"):
        assert shown in err, err[-2000:]
    assert "oracle" not in err  # the table is on standard output, the bar is not


def test_check_is_silent_when_piped(tmp_path: Path) -> None:
    status, out, err = _symgrad(CHECK, tmp_path)
    assert (status, err) == (0, "")
    assert "agreement: all checks pass" in out


def test_generate_of_a_large_expression_shows_its_progress_on_a_terminal(
    tmp_path: Path,
) -> None:
    status, out, err = _symgrad(
        ["generate", "-", "-o", "big.py"], tmp_path, LARGE, terminal=True
    )
    assert (status, out) == (0, "wrote big.py\n"), err
    for shown in ("NumPy module", "/3", "step"):
        assert shown in err, err[-2000:]
    written = (tmp_path / "big.py").read_bytes()
    # piped: nothing on standard error, and the same module, byte for byte
    (tmp_path / "piped").mkdir()
    status, out, err = _symgrad(
        ["generate", "-", "-o", "big.py"], tmp_path / "piped", LARGE
    )
    assert (status, out, err) == (0, "wrote big.py\n", "")
    assert (tmp_path / "piped" / "big.py").read_bytes() == written
