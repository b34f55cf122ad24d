"""LaTeX that symgrad emits: Jupyter's aligned block renders with KaTeX, and input
names print unambiguously (no two names look the same), the same everywhere.

KaTeX runs for real (Node.js and `npm ci` at the repository root, as in CI) through
tests/test_docs.py's script; without them the KaTeX checks are skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from test_docs import KATEX_SCRIPT, ROOT, _node_and_katex

import symgrad

# KaTeX's HTML alone (no MathML, whose annotation repeats the TeX source): two names
# look the same exactly when these strings are equal.
HTML_SCRIPT = """
const katex = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const html = {};
  for (const [label, tex] of Object.entries(JSON.parse(input))) {
    html[label] = katex.renderToString(tex, {throwOnError: true, output: "html"});
  }
  process.stdout.write(JSON.stringify(html));
});
"""


def _run_katex(script: str, strings: dict[str, str]) -> dict[str, str]:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "katex").is_dir():
        pytest.skip("KaTeX checks need Node.js and `npm ci` at the repository root")
    node, katex = _node_and_katex()
    result = subprocess.run(
        [node, "-e", script, str(katex)],
        input=json.dumps(strings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def katex_errors(strings: dict[str, str]) -> dict[str, str]:
    """label -> KaTeX's error, for each string KaTeX rejects (one node process)."""
    return _run_katex(KATEX_SCRIPT, strings)


def katex_html(strings: dict[str, str]) -> dict[str, str]:
    """label -> KaTeX's HTML (one node process)."""
    return _run_katex(HTML_SCRIPT, strings)


# --- Jupyter's aligned block ------------------------------------------------------
EXPRESSIONS = [
    "max(x, y)",
    "x == y",
    "where(x == 0, x, y)",
    "where(x == y, x**2, y)",
    "cos(x**2)",
    "x < y",
    "abs(x)",
    "lo_hi * x__y + x_1_2",
]


def _aligned(expression: str) -> str:
    shown = symgrad.derive(expression)._repr_latex_()
    assert shown.startswith("$") and shown.endswith("$")
    return shown[1:-1]


def test_repr_latex_renders_with_katex() -> None:
    errors = katex_errors({e: _aligned(e) for e in EXPRESSIONS})
    assert errors == {}, "\n\n".join(f"{k}: {v}" for k, v in errors.items())


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_repr_latex_has_one_alignment_point_per_row(expression: str) -> None:
    derivation = symgrad.derive(expression)
    block = _aligned(expression)
    lines = derivation.latex().split("\n")
    assert block.count("&=") == len(lines) == 1 + len(derivation.derivatives)
    for line in lines:  # each latex() line, aligned at its own `=` (not a comparison's)
        left, right = line.split(" = ", 1)
        assert f"{left} &= {right}" in block


# --- markdown --------------------------------------------------------------------
def test_markdown_math_renders_with_katex() -> None:
    markdown = symgrad.derive("lo_hi * x__y + max(x_1, x1)").markdown()
    inline = markdown.split("$")[1]
    display = markdown.split("$$\n")[1::2]
    strings = {"inline": inline} | {f"display {i}": s for i, s in enumerate(display)}
    assert len(strings) == 5
    errors = katex_errors(strings)
    assert errors == {}, errors
