"""Sphinx configuration of symgrad's documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
Needs ``pip install -e ".[docs]"`` in the checkout. Math is typeset in the browser by
the KaTeX that ships inside symgrad, which the build copies into ``_static/katex``, so
the site works offline.

Two pages are written at build time, never by hand: ``catalog`` from the registry
(`symgrad.catalog.catalog_rows`) and ``gallery`` from the seed expressions
(`symgrad.examples.SEEDS`). Their sources hold the introduction; `_generated_page`
appends the rest when Sphinx reads them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from symgrad import __version__  # noqa: E402
from symgrad.catalog import catalog_rows  # noqa: E402
from symgrad.examples import SEEDS  # noqa: E402
from symgrad.sphinx import catalog_expression  # noqa: E402

project = "symgrad"
author = "the symgrad authors"
copyright = "the symgrad authors"  # noqa: A001 - Sphinx's name
version = release = __version__

# myst_nb: MyST Markdown (it brings myst_parser) and Jupyter notebooks
extensions = ["myst_nb", "symgrad.sphinx"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath"]  # $$ math in Markdown, as notebooks show it
myst_update_mathjax = False  # no MathJax here: KaTeX typesets all math
# The notebook runs at every build, in a temporary folder (it writes a plot and a
# module); an error in it fails the build.
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_timeout = 120
nb_merge_streams = True
nb_render_markdown_format = "myst"  # Markdown outputs with their $$ math
html_theme = "alabaster"
html_title = f"symgrad {__version__}"
html_static_path = ["_static"]
html_css_files = ["fit.css"]  # long lines of code wrap: nothing scrolls sideways
html_show_sourcelink = False
html_theme_options = {"show_powered_by": False}  # no links off the site
myst_heading_anchors = 2

# The gallery's points and plot ranges, by seed name. A seed that is not listed here
# still gets its section: each input at 0.5, the first input plotted over [-3, 3].
GALLERY: dict[str, dict[str, str]] = {
    "erf": {"at": "x=1"},
    "abs": {"at": "x=0"},
    "exp": {"at": "x=1"},
    "sum_of_squares": {"at": "x=3, y=4", "vary": "x"},
    "max": {"at": "x=[1,2,3,4,4,0]"},
    "clip": {"at": "x=1.5", "range": "0,7"},
    "cos_x2": {"at": "x=0.5"},
    "lt": {"at": "x=1, y=2", "vary": "x"},
    "sin_cos_norm": {"at": "x=[0.3,-0.7,1.1]"},
    "mean_square": {"at": "x=[1,2,3]"},
}


def sentence(text: str) -> str:
    """A description as the start of a sentence: a first word capitalized, but not a
    formula or a name (`sqrt(x**2 + y**2) ...`, `x limited to ...`, `max(x, 0)`)."""
    first = re.match(r"[A-Za-z]+", text)
    if (
        first
        and len(first.group()) > 1
        and text[first.end() : first.end() + 1] in " ,:"
    ):
        return text[0].upper() + text[1:]
    return text


def markdown_text(text: str) -> str:
    """Plain text for MyST Markdown: `**` is no bold, `<` no tag, `[` no link."""
    return re.sub(r"([\\`*_{}\[\]<>#|~$])", r"\\\1", text)


def catalog_page() -> str:
    """One section per function of the catalog: its derivation and kink convention."""
    parts = []
    for row in catalog_rows():
        expression = catalog_expression(row)
        names = ", ".join(f"`{n}`" for n in row["names"])
        spelled = f" Spelled {names}." if names else ""
        parts.append(f"## `{row['signature']}`\n")
        parts.append(f"{markdown_text(sentence(row['description']))}.")
        parts.append(f"{spelled}\n")
        parts.append(f"```{{symgrad}} {expression}\n```\n")
        if row["derivative_jax"]:
            parts.append("With `--convention jax`:\n")
            parts.append(f"```{{symgrad}} {expression}\n:convention: jax\n```\n")
    return "\n".join(parts)


def gallery_page() -> str:
    """One section per seed: derivation, steps, plot and generated code."""
    parts = []
    for name, (expression, origin) in SEEDS.items():
        options = dict(GALLERY.get(name, {}))
        if "at" not in options:
            from symgrad import derive

            inputs = derive(expression).inputs
            options["at"] = ", ".join(f"{n}=0.5" for n in inputs)
            if len(inputs) > 1:
                options["vary"] = inputs[0]
        lines = [f"## `{expression}`\n", f"{markdown_text(sentence(origin))}.\n"]
        lines.append(f"```{{symgrad}} {expression}")
        lines += [":steps:", ":plot:", ":code:", f":output: generated/{name}.py"]
        lines += [f":{key}: {value}" for key, value in options.items()]
        lines.append("```\n")
        parts.append("\n".join(lines))
    return "\n".join(parts)


GENERATED = {"catalog": catalog_page, "gallery": gallery_page}


def _generated_page(app: Any, docname: str, source: list[str]) -> None:
    if docname in GENERATED:
        source[0] += "\n\n" + GENERATED[docname]()


def _always_reread(app: Any, env: Any, added: Any, changed: Any, removed: Any) -> Any:
    # The registry and the seeds are not sources Sphinx watches: read these again.
    return [name for name in GENERATED if name in env.found_docs]


def setup(app: Any) -> None:
    app.connect("source-read", _generated_page)
    app.connect("env-get-outdated", _always_reread)
