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
from html.parser import HTMLParser

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from test_docs import KATEX_SCRIPT, ROOT, _node_and_katex, missing_tool

import symgrad
from symgrad.printing import latex_name, to_latex

# KaTeX's HTML alone (no MathML, whose annotation repeats the TeX source).
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
        missing_tool("KaTeX checks need Node.js and `npm ci` at the repository root")
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


class _Look(HTMLParser):
    """What KaTeX's HTML shows: each character with its font, size and height, and
    the spaces between. Grouping spans, which change the HTML but not the look
    (x_1 and x_{1}, \\mathrm{hi}\\mathrm{lo} and \\mathrm{hilo}), are left out."""

    FONTS = ("mathnormal", "mathit", "mathbf", "boldsymbol", "amsrm", "mathsf")

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []  # (font or size or raise, value)
        self.depths: list[int] = []
        self.items: list[tuple[str, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        style = found.get("style") or ""
        pushed = 0
        for font in self.FONTS:
            if font in classes:
                self.stack.append(("font", font))
                pushed += 1
        if "sizing" in classes:
            self.stack.append(("size", " ".join(classes)))
            pushed += 1
        if "top:" in style:
            self.stack.append(("raise", style.split("top:")[1].split(";")[0]))
            pushed += 1
        if "mspace" in classes or "mspace" in style:
            self.items.append(("space", style))
        self.depths.append(pushed)
        if "strut" in classes or "pstrut" in classes or "vlist-s" in classes:
            self.stack.append(("hidden", ""))
            self.depths[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        for _ in range(self.depths.pop()):
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if any(kind == "hidden" for kind, _ in self.stack):
            return
        fonts = [value for kind, value in self.stack if kind == "font"]
        font = fonts[-1] if fonts else "roman"  # \\mathrm and KaTeX's default
        where = tuple(value for kind, value in self.stack if kind != "font")
        self.items.extend((char, font, *where) for char in data if char != "\u200b")


def katex_looks(strings: dict[str, str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """label -> how KaTeX lays the string out (one node process)."""
    looks = {}
    for label, html in _run_katex(HTML_SCRIPT, strings).items():
        parser = _Look()
        parser.feed(html)
        looks[label] = tuple(parser.items)
    return looks


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
    alike: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for n, look in katex_looks(seen).items():
        alike.setdefault(look, []).append(n)
    assert [names for names in alike.values() if len(names) > 1] == []


def test_the_look_check_can_fail() -> None:
    looks = katex_looks(
        {
            "x_1_2": "x_{1 2}",  # SymPy's x_1_2
            "x_12": "x_{12}",  # and x_12
            "x1": "x_1",
            "x_1": "x_{1}",
            "two": r"\mathrm{hi} \mathrm{lo}",
            "one": r"\mathrm{hilo}",
            "upright": r"\mathrm{x\_12}",
            "italic": r"x\_12",
            "raised": "x^{12}",
        }
    )
    assert looks["x_1_2"] == looks["x_12"] and looks["x1"] == looks["x_1"]
    assert looks["two"] == looks["one"]
    others = [looks[k] for k in ("x_12", "x1", "one", "upright", "italic", "raised")]
    assert len(set(others)) == len(others)


def test_products_of_upright_names_do_not_look_like_one_name() -> None:
    lo, hi, x, y = sp.symbols("lo hi x y", real=True)
    shown = {
        "hi*lo": to_latex(hi * lo),
        "hilo": to_latex(sp.Symbol("hilo")),
        "lohi": to_latex(sp.Symbol("lohi")),
        "lo*(x + 1)": to_latex(lo * (x + 1)),  # not a function lo applied to x + 1
        "lo(x + 1)": r"\operatorname{lo}{\left(x + 1 \right)}",
    }
    looks = katex_looks(shown)
    assert len(set(looks.values())) == len(looks), shown
    assert to_latex(2 * x * y) == "2 x y"  # one-letter names: as SymPy writes them
    assert to_latex(lo * (x + 1)) == r"\mathrm{lo} \cdot \left(x + 1\right)"
