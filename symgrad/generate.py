"""Generate: write a derivation's NumPy module to a file, safely.

Writing is atomic (a temporary file in the same folder, then a rename), parent folders
are created, and a file that symgrad did not generate is never overwritten without
`force`. Module names must be valid Python identifiers (so the module can be imported).

What is at the path already is judged without trusting it: only a regular file (or a
symlink to one) whose first line is exactly `MARKER_LINE` is symgrad's, and of it only
the first `HEAD_BYTES` bytes are read. A named pipe, a device or a socket is never
opened (reading it could block or never end) and is refused even with `force`: the
rename would replace it with a file, and a module was hardly meant to go there.
"""

from __future__ import annotations

import keyword
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from symgrad.derivation import Derivation
from symgrad.errors import SymgradError
from symgrad.progress import progress as _progress

MARKER = "# symgrad-generated module"
# The first line of every generated module (templates/module.py.jinja), and the only
# thing that makes an existing file symgrad's to overwrite.
MARKER_LINE = "# symgrad-generated module: `symgrad generate` may overwrite this file."
HEAD_BYTES = 256  # read no more of an existing file than its first line needs


def module_path(output: str | os.PathLike[str], name: str | None) -> tuple[Path, str]:
    """The file to write and the module name, from -o PATH and --name."""
    path = Path(output)
    if path.suffix != ".py":  # a folder: NAME.py inside it
        if name is None:
            raise SymgradError(
                "-o names a folder: give --name, or a file ending in .py"
            )
        path = path / f"{name}.py"
    module = name or path.stem
    if not module.isidentifier() or keyword.iskeyword(module):
        raise SymgradError(
            f"module name '{module}' is not a valid Python identifier "
            "(use letters, digits and _, not starting with a digit)"
        )
    if name is not None and path.stem != name:
        raise SymgradError(f"--name {name} does not match the file name {path.name}")
    return path, module


def write_module(
    derivation: Derivation,
    output: str | os.PathLike[str],
    *,
    name: str | None = None,
    force: bool = False,
    argv: Sequence[str] | None = None,
    order: int = 1,
    progress: bool = False,
) -> Path:
    """Render the module for `derivation` and write it to `output` atomically.

    With `progress`, the stages (the reverse program, the module's source, writing)
    are reported on standard error when it is a terminal (`symgrad.progress`)."""
    path, module = module_path(output, name)
    _check_overwrite(path, force)
    command = " ".join(argv) if argv else ""
    with _progress(3, "reverse program", enabled=progress, ticking=True) as bar:
        derivation.program  # noqa: B018 - built here, so its time shows as a stage
        bar.update()
        bar.set_description("NumPy module")
        source = derivation.module_source(command=command, order=order)
        bar.update()
        bar.set_description(f"writing {path.name}")
        _write(path, source)
        bar.update()
    return path


def _write(path: Path, source: str) -> None:
    """Write `source` to `path` atomically: a temporary file beside it, renamed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(source)
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SymgradError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check_overwrite(path: Path, force: bool) -> None:
    """Raise unless writing `path` is safe: nothing there, or a module of ours."""
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SymgradError(f"cannot inspect {path}: {exc.strerror or exc}") from None
    try:
        info = os.stat(path)  # a symlink is judged by what it points to
    except FileNotFoundError:  # a dangling symlink
        info = link
    except OSError as exc:
        raise SymgradError(f"cannot inspect {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise SymgradError(f"{path} is a folder")
    kind = _special_kind(info.st_mode)
    if kind is not None:
        raise SymgradError(
            f"{path} is {kind}, not a regular file: symgrad writes modules only to "
            "regular files, even with --force"
        )
    if force or (stat.S_ISREG(info.st_mode) and _first_line_is_marker(path)):
        return
    raise SymgradError(
        f"{path} exists and was not generated by symgrad; use --force to overwrite it"
    )


def _special_kind(mode: int) -> str | None:
    """What a file that is neither regular, a folder nor a symlink is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return "not a regular file"
    return None


def _first_line_is_marker(path: Path) -> bool:
    """Whether the regular file at `path` starts with the line `MARKER_LINE`.

    Opened non-blocking and checked again once open (the path may have been swapped for
    a pipe since it was inspected); at most `HEAD_BYTES` bytes are read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SymgradError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, HEAD_BYTES)
    except OSError as exc:
        raise SymgradError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    line, newline, _ = head.partition(b"\n")
    return bool(newline) and line.rstrip(b"\r") == MARKER_LINE.encode()
