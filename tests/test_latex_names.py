"""LaTeX that symgrad emits: Jupyter's aligned block renders with KaTeX, and input
names print unambiguously (no two names look the same), the same everywhere.

KaTeX runs for real (Node.js and `npm ci` at the repository root, as in CI) through
tests/test_docs.py's script; without them the KaTeX checks are skipped.
"""

from __future__ import annotations

import json
import shutil
import string
import subprocess

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from test_docs import KATEX_SCRIPT, ROOT, _node_and_katex

import symgrad
from symgrad.printing import latex_name, to_latex

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


# --- input names -----------------------------------------------------------------
def test_names_print_unambiguously() -> None:
    expected = {
        "x": "x",
        "X": "X",
        "x1": "x_{1}",
        "x12": "x_{12}",
        "x_1": r"\mathrm{x\_1}",
        "x_12": r"\mathrm{x\_12}",
        "x_1_2": r"\mathrm{x\_1\_2}",
        "x__y": r"\mathrm{x\_\_y}",
        "lo": r"\mathrm{lo}",
        "lo_hi": r"\mathrm{lo\_hi}",
        "xbar": r"\mathrm{xbar}",  # not \bar{x}: that is the adjoint of x in steps
        "alpha": r"\alpha",
        "alpha2": r"\alpha_{2}",
        "alpha_2": r"\mathrm{alpha\_2}",
        "Omega": r"\Omega",
        "Alpha": r"\mathrm{Alpha}",  # SymPy's A would be the input A
        "omicron": r"\mathrm{omicron}",  # SymPy's o would be the input o
        "lamda": r"\lambda",  # SymPy's spelling (lambda is a keyword)
        "lambda": r"\mathrm{lambda}",
        "pi": r"\mathrm{pi}",  # not the constant's \pi
        "e": r"\mathrm{e}",  # not Euler's e
    }
    assert {name: latex_name(name) for name in expected} == expected


def test_names_are_the_same_everywhere() -> None:
    text = "x__y + x_1_2*x_12 + lo_hi*x12 + alpha + x1 + x_1 + xbar"
    d = symgrad.derive(text)
    names = {n: latex_name(n) for n in d.inputs}
    assert len(set(names.values())) == len(names)
    lines = d.latex().split("\n")
    assert lines[0].startswith(f"f({', '.join(names.values())}) = ")
    for n, tex in names.items():
        assert to_latex(sp.Symbol(n)) == tex
        assert to_latex(sp.Symbol(n, real=True) ** 2) == f"{tex}^{{2}}"
        assert rf"\frac{{\partial f}}{{\partial {tex}}} = " in d.latex()
        assert rf"\frac{{\partial f}}{{\partial {tex}}} = " in d.markdown()
        assert tex in lines[0].partition(" = ")[2]
    assert d.markdown().startswith(f"For $f({', '.join(names.values())}) = ")
    assert "x^{y}" not in d.latex() + d.markdown() + d._repr_latex_()


def test_markdown_math_renders_with_katex() -> None:
    markdown = symgrad.derive("lo_hi * x__y + max(x_1, x1)").markdown()
    inline = markdown.split("$")[1]
    display = markdown.split("$$\n")[1::2]
    strings = {"inline": inline} | {f"display {i}": s for i, s in enumerate(display)}
    assert len(strings) == 5
    errors = katex_errors(strings)
    assert errors == {}, errors


GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lamda lambda mu nu xi "
    "omicron pi rho sigma tau upsilon phi chi psi omega Alpha Gamma Delta Theta Lamda "
    "Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
).split()
TAIL = string.ascii_letters + string.digits + "_"
identifiers = st.one_of(
    st.builds(
        str.__add__, st.sampled_from(string.ascii_letters), st.text(TAIL, max_size=8)
    ),
    # near misses of one another: x1, x_1, x__1, x1_2, x_12, ...
    st.builds(str.__add__, st.sampled_from("xe"), st.text("x1_2", max_size=5)),
    st.builds(str.__add__, st.sampled_from(GREEK), st.text("1_2a", max_size=3)),
    st.sampled_from(GREEK),
)


def test_random_names_are_injective_and_render() -> None:
    seen: dict[str, str] = {}

    @settings(max_examples=300, deadline=None)
    @given(st.sets(identifiers, min_size=1, max_size=20))
    def check(names: set[str]) -> None:
        rendered = {n: latex_name(n) for n in names}
        assert len(set(rendered.values())) == len(names), rendered
        for n, tex in rendered.items():
            assert to_latex(sp.Symbol(n, real=True)) == tex
        seen.update(rendered)

    check()
    assert len(set(seen.values())) == len(seen)  # over every name drawn at all
    errors = katex_errors(seen)
    assert errors == {}, "\n".join(f"{k}: {v}" for k, v in errors.items())
    # and no two of them look the same once KaTeX has laid them out
    html = katex_html(seen)
    looks: dict[str, list[str]] = {}
    for n, page in html.items():
        looks.setdefault(page, []).append(n)
    assert [ns for ns in looks.values() if len(ns) > 1] == []


def test_the_look_check_can_fail() -> None:
    # SymPy's x_1_2 and x_12: different TeX, the same look
    html = katex_html({"x_1_2": "x_{1 2}", "x_12": "x_{12}", "x12": r"\mathrm{x\_12}"})
    assert html["x_1_2"] == html["x_12"] != html["x12"]
