"""A Sphinx extension: derivations in documentation, typeset offline with KaTeX.

Enable it with ``extensions = ["symgrad.sphinx"]`` in ``conf.py``. It provides a
directive, written in reStructuredText as ::

    .. symgrad:: cos(x**2)
       :at: x=0.5
       :steps:

and in MyST Markdown as ::

    ```{symgrad} cos(x**2)
    :at: x=0.5
    :steps:
    ```

It shows the function and its derivatives as display math, the kink conventions as
notes, and with options:

- ``:steps:`` the backward pass step by step (`symgrad.steps`, as LaTeX);
- ``:at: x=0.5, y=[1,2]`` the values at that point (in the steps, or on their own);
- ``:code:`` the generated NumPy module, with the `symgrad generate` command that
  writes it to ``:output: PATH`` (default ``derivative.py``);
- ``:plot:`` the plot of `symgrad plot` (needs matplotlib), over ``:range: -3,3``,
  varying ``:vary: NAME`` (the other inputs fixed at their ``:at:`` values);
- ``:mode: forward`` (with ``:steps:``) forward mode instead: each step's tangent,
  along ``:tangent: x=1`` (default: 1 for the first input, 0 for the others);
- ``:order: 2`` the second partial derivatives too;
- ``:convention: torch|jax`` and ``:wrt: x,y`` as for `symgrad derive`.

Math, the directive's and any other (``:math:``, ``.. math::``), is rendered in the
reader's browser by KaTeX served from the built site's ``_static/katex/``: no CDN. KaTeX
ships inside symgrad (``symgrad/katex``, the version pinned in the repository's
``package.json``): nothing to install, no npm. The extension copies its CSS, JavaScript
and fonts into the site; ``symgrad_katex_dir`` in ``conf.py`` (or
``$SYMGRAD_KATEX_DIR``) names another copy of KaTeX's ``dist`` folder to use instead.

The steps (``:steps:``) are a table, a row per step with its value and its rule, whose
text wraps to the page's content column; a formula still too wide is set smaller to
fit (down to 3/4 of its size), and past that scrolls inside its own block, never the
page.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.math import get_node_equation_number

from symgrad.errors import SymgradError

RENDERER = "symgrad_katex"
DEFAULT_OUTPUT = (
    "derivative.py"  # the file `:code:`'s command writes, unless `:output:`
)
KATEX_FILES = ("katex.min.css", "katex.min.js")
# A formula too wide for the column scrolls inside its block, not the page (and
# RENDER_JS sets it smaller first); the steps are a table whose text wraps.
STYLE_CSS = """\
div.symgrad-block { overflow-x: auto; overflow-y: hidden; margin: 0.8em 0; }
div.symgrad-steps { overflow-x: auto; }
div.symgrad-block .katex-display { margin: 0.4em 0; }
div.symgrad img.symgrad-plot { max-width: 100%; height: auto; }
table.symgrad-steps { width: 100%; border-collapse: collapse; margin: 0.4em 0 0.8em; }
table.symgrad-steps th, table.symgrad-steps td {
  text-align: left; vertical-align: middle; padding: 0.15em 0.5em;
}
table.symgrad-steps p { margin: 0; }
table.symgrad-steps td.symgrad-phase { font-style: italic; padding-top: 0.5em; }
table.symgrad-steps td.symgrad-value { overflow-wrap: break-word; }
table.symgrad-steps td.symgrad-rule { font-size: 0.9em; }
table.symgrad-steps th.symgrad-step { width: 45%; }
div.symgrad div.highlight pre {
  max-height: 30em; overflow-y: auto; white-space: pre-wrap; overflow-wrap: break-word;
}
p.symgrad-note { font-size: 0.95em; }
"""
# Typesets every math element the renderer below wrote, once the page has loaded;
# then a block or steps table wider than the column is set smaller, down to 3/4 of
# its size (`smallest`), so that it fits; past that, it scrolls inside its box.
RENDER_JS = """\
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".symgrad-math").forEach(function (element) {
    katex.render(element.textContent, element, {
      displayMode: element.classList.contains("symgrad-display"),
      throwOnError: false,
    });
  });
  const smallest = 0.75;
  function fit() {
    document.querySelectorAll(".symgrad-block, div.symgrad-steps").forEach(
      function (box) {
        box.style.fontSize = "";
        for (let scale = 1; box.scrollWidth > box.clientWidth + 1; ) {
          scale = Math.max(scale * box.clientWidth / box.scrollWidth - 0.01, smallest);
          box.style.fontSize = scale + "em";
          if (scale === smallest) break;
        }
      });
  }
  document.fonts.ready.then(fit);
  window.addEventListener("resize", fit);
});
"""


# --- the directive --------------------------------------------------------------------
def _convention(argument: str) -> str:
    return directives.choice(argument, ("torch", "jax"))


class SymgradDirective(SphinxDirective):
    """``.. symgrad:: EXPR``: the derivation of EXPR (see the module docstring)."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {
        "steps": directives.flag,
        "at": directives.unchanged_required,
        "code": directives.flag,
        "plot": directives.flag,
        "convention": _convention,
        "wrt": directives.unchanged_required,
        "vary": directives.unchanged_required,
        "range": directives.unchanged_required,
        "mode": lambda value: directives.choice(value, ("reverse", "forward")),
        "tangent": directives.unchanged_required,
        "order": lambda value: directives.choice(value, ("1", "2")),
        "output": directives.unchanged_required,
    }

    def run(self) -> list[nodes.Node]:
        try:
            return self._run()
        except SymgradError as exc:
            raise self.error(
                f"symgrad: {self.arguments[0]!r}: {exc.format()}"
            ) from None

    def _run(self) -> list[nodes.Node]:
        from symgrad.derivation import derive

        text = self.arguments[0].strip()
        wrt = _names(self.options.get("wrt"))
        derivation = derive(
            text,
            wrt=wrt,
            convention=self.options.get("convention", "torch"),
            order=int(self.options.get("order", "1")),
        )
        at = _values(self.options.get("at"))
        box = nodes.container(classes=["symgrad"])
        box += self._math(aligned(derivation.latex().split("\n")))
        if at is not None and "steps" not in self.options:  # the steps show them
            box += self._math(values_latex(derivation, at))
        if "steps" in self.options:
            box += self._steps(derivation, at)
        for note in derivation.notes:
            paragraph = nodes.paragraph(classes=["symgrad-note"])
            paragraph += nodes.strong(text="Note: ")
            paragraph += nodes.Text(note)
            box += paragraph
        if "plot" in self.options:
            box += self._plot(derivation, at)
        if "code" in self.options:
            output = self.options.get("output", DEFAULT_OUTPUT)
            command = generate_command(text, output, derivation.convention)
            # the module of that command: every input's gradient (`:wrt:` only
            # restricts the formulas shown above)
            whole = (
                derive(text, convention=derivation.convention) if wrt else derivation
            )
            source = whole.module_source(command=command)
            lead = nodes.paragraph(classes=["symgrad-code"])
            lead += nodes.Text("The NumPy module that ")
            lead += nodes.literal(command, command)
            lead += nodes.Text(f" writes ({source.count(chr(10))} lines):")
            box += lead
            code = nodes.literal_block(source, source, language="python")
            self.set_source_info(code)
            box += code
        self.set_source_info(box)
        return [box]

    def _math(self, latex: str) -> nodes.math_block:
        node = nodes.math_block(
            latex,
            latex,
            docname=self.env.docname,
            number=None,
            label=None,
            nowrap=False,
        )
        self.set_source_info(node)
        return node

    def _steps(self, derivation: Any, at: dict[str, Any] | None) -> list[nodes.Node]:
        """The steps as a table: step, value (with `:at:`) and rule, one row each.

        A table, not one wide `aligned` block: the rule and its notes are text that
        wraps, so every column stays in view in the page's content column."""
        from symgrad.steps import trace, value_text
        from symgrad.steps.formats import step_latex, where_latex

        forward_mode = self.options.get("mode", "reverse") == "forward"
        steps = trace(
            derivation,
            at=at,
            mode="forward" if forward_mode else "reverse",
            tangents=_values(self.options.get("tangent")),
        )
        with_values = steps.at is not None
        lead = nodes.paragraph(classes=["symgrad-steps-lead"])
        lead += nodes.Text(
            "Forward mode step by step (each step's tangent)"
            if forward_mode
            else "The backward pass step by step"
        )
        if with_values:
            lead += nodes.Text(", at ")
            lead += self._inline(where_latex(steps))
        lead += nodes.Text(":")
        columns = ["step", "value", "rule"] if with_values else ["step", "rule"]
        table = nodes.table(classes=["symgrad-steps"])
        group = nodes.tgroup(cols=len(columns))
        table += group
        for _ in columns:  # widths: the browser's, from the contents
            group += nodes.colspec(colwidth=1)
        head = nodes.thead()
        head += self._row([nodes.Text(c) for c in columns], columns)
        group += head
        body = nodes.tbody()
        sections = [
            ("forward trace: each step once, arguments first", steps.forward),
            (
                "backward trace: the gradient of sum(f) with respect to each step, "
                "in reverse order",
                steps.backward,
            ),
            ("result, simplified", steps.results),
        ]
        if forward_mode:
            sections[1] = (
                "tangent trace (forward mode): the derivative of each step along "
                "the inputs' tangents, arguments first",
                steps.backward,
            )
        for title, rows in sections:
            if not rows:
                continue
            body += self._row([nodes.Text(title)], ["phase"], span=len(columns))
            for step in rows:
                cells: list[nodes.Node] = [self._inline(step_latex(step))]
                if with_values:  # as text: a long array wraps
                    value = "" if step.value is None else value_text(step.value)
                    cells.append(nodes.Text(value))
                cells.append(nodes.Text("; ".join((step.rule, *step.notes))))
                body += self._row(cells, columns)
        group += body
        self.set_source_info(table)
        remarks = []
        for remark in steps.remarks:
            paragraph = nodes.paragraph(classes=["symgrad-note"])
            paragraph += nodes.Text(f"({remark})")
            remarks.append(paragraph)
        container = nodes.container(classes=["symgrad-steps"])
        container += [lead, table, *remarks]
        return [container]

    def _inline(self, latex: str) -> nodes.math:
        """Inline math set as display math (fractions full size), for table cells."""
        return nodes.math(latex, rf"\displaystyle {latex}")

    @staticmethod
    def _row(cells: list[nodes.Node], kinds: list[str], *, span: int = 1) -> nodes.row:
        """A row of the steps table, each cell of class symgrad-<kind>."""
        row = nodes.row()
        for cell, kind in zip(cells, kinds, strict=True):
            entry = nodes.entry(classes=[f"symgrad-{kind}"])
            if span > 1:
                entry["morecols"] = span - 1
            paragraph = nodes.paragraph()
            paragraph += cell
            entry += paragraph
            row += entry
        return row

    def _plot(self, derivation: Any, at: dict[str, Any] | None) -> nodes.Node:
        from symgrad import plot

        vary = self.options.get("vary")
        if vary is None and len(derivation.wrt) == 1:
            vary = derivation.wrt[0]  # the only input, or the one of :wrt:
        name = vary or (derivation.inputs[0] if derivation.inputs else "x")
        fixed: dict[str, float] = {}
        for key, value in (at or {}).items():
            if key == name:
                continue
            if getattr(value, "ndim", 0) != 0:
                raise SymgradError(f":plot: fixes {key}, which must be one number")
            fixed[key] = float(value)
        lo, hi = plot.parse_range(self.options.get("range", "-3,3"))
        data = plot.plot_data(derivation, wrt=vary, lo=lo, hi=hi, fixed=fixed)
        key = repr((derivation.text, derivation.convention, name, lo, hi, fixed))
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = Path(self.env.doctreedir) / "symgrad-plots"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"plot-{digest}.png"
        plot.render(data, path)
        document_dir = (Path(self.env.srcdir) / self.env.docname).parent
        image = nodes.image(
            uri=Path(os.path.relpath(path, document_dir)).as_posix(),
            alt=f"{derivation.text} and its derivative over [{lo:g}, {hi:g}]",
            classes=["symgrad-plot"],
        )
        self.set_source_info(image)
        return image


def _names(option: str | None) -> list[str] | None:
    if not option:
        return None
    return [n.strip() for n in option.split(",") if n.strip()]


def _values(option: str | None) -> dict[str, Any] | None:
    if not option:
        return None
    from symgrad.values import parse_values

    return parse_values(option)


def generate_command(text: str, output: str, convention: str = "torch") -> str:
    """The `symgrad generate` command that writes the module `:code:` shows, as
    `symgrad generate` itself records it in the module."""
    words = ["symgrad", "generate", shlex.quote(text), "-o", shlex.quote(output)]
    if convention != "torch":
        words += ["--convention", convention]
    return " ".join(words)


def aligned(lines: list[str]) -> str:
    """``a = b`` lines as one ``aligned`` block, aligned at each first `` = ``."""
    rows = []
    for line in lines:
        left, sep, right = line.partition(" = ")
        rows.append(f"{left} &= {right}" if sep else line)
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def values_latex(derivation: Any, at: dict[str, Any]) -> str:
    """f and its derivatives at a point, as an ``aligned`` block."""
    from symgrad.printing import latex_name as _latex_name
    from symgrad.steps import value_latex

    value, grads = derivation.evaluate(at)
    where = ", ".join(f"{_latex_name(k)} = {value_latex(v)}" for k, v in at.items())
    rows = [rf"f &= {value_latex(value)} \qquad \text{{at }} {where}"]
    for name in derivation.wrt:
        rows.append(
            rf"\frac{{\partial f}}{{\partial {_latex_name(name)}}} &= "
            f"{value_latex(grads[name])}"
        )
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def catalog_expression(row: dict[str, Any]) -> str:
    """An expression that uses one catalog row's function: its signature, as typed."""
    return str(row["signature"]).replace(", ...", "")


# --- math through KaTeX ---------------------------------------------------------------
def _visit_math(self: Any, node: nodes.math) -> None:
    self.body.append(
        self.starttag(node, "span", "", CLASS="math notranslate symgrad-math")
    )
    self.body.append(self.encode(node.astext()) + "</span>")
    raise nodes.SkipNode


def _visit_math_block(self: Any, node: nodes.math_block) -> None:
    latex = node.astext()
    if node.get("nowrap"):
        parts = [latex]
    else:
        parts = [_wrap(p.strip()) for p in latex.split("\n\n") if p.strip()]
    self.body.append(self.starttag(node, "div", CLASS="math notranslate symgrad-block"))
    if node["number"]:
        number = get_node_equation_number(self, node)
        self.body.append(f'<span class="eqno">({number})')
        self.add_permalink_ref(node, "Link to this equation")
        self.body.append("</span>")
    for part in parts:
        self.body.append(
            '<div class="symgrad-math symgrad-display">' + self.encode(part) + "</div>"
        )
    self.body.append("</div>\n")
    raise nodes.SkipNode


def _wrap(part: str) -> str:
    """Several lines without an environment of their own: align or gather them."""
    if "\\\\" not in part or part.startswith("\\begin{"):
        return part
    env = "aligned" if "&" in part else "gathered"
    return f"\\begin{{{env}}}{part}\\end{{{env}}}"


def find_katex(configured: str = "") -> Path | None:
    """KaTeX's ``dist`` folder: the one configured (``symgrad_katex_dir``, else
    ``$SYMGRAD_KATEX_DIR``), else the copy shipped inside symgrad."""
    candidates = [
        Path(given)
        for given in (configured, os.environ.get("SYMGRAD_KATEX_DIR", ""))
        if given
    ]
    candidates.append(Path(__file__).resolve().parent / "katex")  # shipped
    for candidate in candidates:
        if (
            all((candidate / name).is_file() for name in KATEX_FILES)
            and (candidate / "fonts").is_dir()
        ):
            return candidate.resolve()
    return None


def _katex(app: Sphinx) -> Path:
    found = find_katex(app.config.symgrad_katex_dir)
    if found is None:
        raise ConfigError(
            "symgrad.sphinx renders math with the KaTeX that ships inside symgrad, "
            "and found none: reinstall symgrad, or set symgrad_katex_dir (or "
            "$SYMGRAD_KATEX_DIR) to a KaTeX dist folder"
        )
    return found


def _uses_katex(app: Sphinx) -> bool:
    builder = app.builder
    return (
        builder is not None
        and builder.format == "html"
        and getattr(builder, "math_renderer_name", None) == RENDERER
    )


def _config_inited(app: Sphinx, config: Config) -> None:
    if config.html_math_renderer is not None:
        return
    if find_katex(config.symgrad_katex_dir) is not None:
        config.html_math_renderer = RENDERER
        return
    # No KaTeX (a symgrad without its copy, or a wrong symgrad_katex_dir): the
    # directive still works, with Sphinx's own math renderer (MathJax, fetched by the
    # reader's browser).
    logging.getLogger(__name__).info(
        "symgrad.sphinx: KaTeX not found, so math is left to Sphinx's MathJax; for "
        "math typeset offline, reinstall symgrad (it ships KaTeX) or set "
        "symgrad_katex_dir"
    )


def _builder_inited(app: Sphinx) -> None:
    if _uses_katex(app):
        _katex(app)  # fail now, not after the build, when KaTeX is missing


def _page_context(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    if not _uses_katex(app):
        return
    if not (
        context.get("has_maths_elements") or app.registry.html_assets_policy == "always"
    ):
        return
    builder: Any = app.builder
    builder.add_css_file("katex/katex.min.css")
    builder.add_css_file("symgrad.css")
    builder.add_js_file("katex/katex.min.js", defer="defer")
    builder.add_js_file(None, body=RENDER_JS)


def _build_finished(app: Sphinx, exception: BaseException | None) -> None:
    if exception is not None or not _uses_katex(app):
        return
    dist = _katex(app)
    target = Path(app.outdir) / "_static" / "katex"
    target.mkdir(parents=True, exist_ok=True)
    for name in KATEX_FILES:
        shutil.copyfile(dist / name, target / name)
    shutil.copytree(dist / "fonts", target / "fonts", dirs_exist_ok=True)
    (target.parent / "symgrad.css").write_text(STYLE_CSS, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    from symgrad import __version__

    app.add_config_value("symgrad_katex_dir", "", "html", types=frozenset({str}))
    app.add_directive("symgrad", SymgradDirective)
    app.add_html_math_renderer(
        RENDERER,
        inline_renderers=(_visit_math, None),
        block_renderers=(_visit_math_block, None),
    )
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {
        "version": __version__,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
