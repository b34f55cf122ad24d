"""The documentation site: it builds with warnings as errors, loads nothing from a CDN,
every LaTeX string symgrad emits renders with KaTeX, and a browser typesets the math.

Needs, besides the Python extras `docs` and `plot`: Node.js (to run the KaTeX that
ships inside symgrad), Chromium (Debian: `apt-get install chromium`), and, for the check
that the shipped KaTeX is the pinned one, npm's copy (`npm ci`). Where one is missing,
the tests that need it are skipped, with the reason; with SYMGRAD_REQUIRE_BROWSER=1 in
the environment (as CI sets it) they fail instead.
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
from PIL import Image

import symgrad
from symgrad import registry
from symgrad.catalog import catalog_rows
from symgrad.examples import SEEDS
from symgrad.sphinx import aligned, catalog_expression, find_katex, values_latex
from symgrad.steps import format_steps, trace
from symgrad.steps.formats import step_latex, where_latex

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("index", "tutorial", "where", "directive", "catalog", "gallery")
REQUIRE_TOOLS = "SYMGRAD_REQUIRE_BROWSER"
CDN = re.compile(
    r"cdn\.|jsdelivr|unpkg|googleapis|gstatic|cloudflare|mathjax|polyfill\.io",
    re.IGNORECASE,
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
]


def missing_tool(reason: str) -> NoReturn:
    """Skip a test for a tool this machine lacks, or fail it where the tools are
    required (SYMGRAD_REQUIRE_BROWSER=1, as in CI)."""
    if os.environ.get(REQUIRE_TOOLS, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_TOOLS} is set: a missing tool is a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it: `sphinx-build -W -b html docs OUT`."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_pages_exist_with_the_registry_and_every_seed(site: Path) -> None:
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page
    for name in ("katex.min.css", "katex.min.js", "fonts/KaTeX_Main-Regular.woff2"):
        assert (site / "_static" / "katex" / name).is_file(), name
    catalog = (site / "catalog.html").read_text(encoding="utf-8")
    headings = [
        html.unescape(re.sub(r"<[^>]+>", "", h))
        for h in re.findall(r"<h2>(.*?)<a class=\"headerlink\"", catalog)
    ]
    # one section per registry row, written at build time
    assert headings == [row["signature"] for row in catalog_rows()]
    gallery = (site / "gallery.html").read_text(encoding="utf-8")
    for expression, _ in SEEDS.values():
        assert html.escape(expression) in gallery, expression
    assert gallery.count('class="symgrad-plot"') == len(SEEDS)
    assert gallery.count('<div class="highlight-python') == len(SEEDS)
    for image in re.findall(r'<img[^>]+src="([^"]+)"', gallery):
        with Image.open(site / image) as picture:
            assert picture.size == (640, 400)
    # the notebook, run at the build: its math, steps, plot and the module's numbers
    notebook = (site / "notebook.html").read_text(encoding="utf-8")
    for shown in (r"\frac{\partial f}{\partial x}", "Backward trace", "sin_exp_relu"):
        assert shown in notebook, shown
    assert re.search(r'<img alt="_images/[^"]+\.png"', notebook), "no inline plot"
    assert "array([0.97942554, 0.1763708 ])" in notebook
    # the directive works from reStructuredText (index, directive) and MyST (the rest)
    for page in PAGES:
        text = (site / f"{page}.html").read_text(encoding="utf-8")
        assert '<div class="symgrad docutils container">' in text, page
        assert "symgrad-math symgrad-display" in text, page


def test_no_cdn_and_no_resource_from_another_server(site: Path) -> None:
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".css":  # what a style sheet loads (not its selectors)
            loads = re.findall(r"url\(([^)]*)\)|@import\s+([^;]*)", text)
            text = "\n".join(u for pair in loads for u in pair)
            for url in text.split():
                assert not re.match(r"['\"]?(?:[a-z]+:(?!image/)|//)", url), url
        assert not CDN.search(text), (path, CDN.search(text))
        if path.suffix == ".html":
            for url in re.findall(r'(?:src|href)="([^"]*)"', text):
                assert not re.match(r"[a-z]+:|//", url), (path, url)


# --- every LaTeX string through KaTeX -------------------------------------------------
def _point(row: dict[str, Any], inputs: tuple[str, ...]) -> dict[str, Any]:
    """A point in the row's test domain (its middle), one value per input."""
    domain = registry.BY_NAME[row["name"]].domain
    ranges = domain if len(domain) == len(inputs) else [domain[-1]] * len(inputs)
    return {
        n: np.float64((lo + hi) / 2) for n, (lo, hi) in zip(inputs, ranges, strict=True)
    }


def _latex_strings() -> dict[str, str]:
    """Every kind of LaTeX symgrad emits, for every catalog function and every seed."""
    from symgrad.values import parse_values

    spec = importlib.util.spec_from_file_location("symgrad_docs_conf", DOCS / "conf.py")
    assert spec and spec.loader
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    gallery: dict[str, dict[str, str]] = conf.GALLERY  # the gallery's points

    strings: dict[str, str] = {}

    def add(label: str, derivation: symgrad.Derivation, at: dict[str, Any]) -> None:
        lines = derivation.latex().split("\n")
        for i, line in enumerate(lines):
            strings[f"{label}: latex() line {i}"] = line
        strings[f"{label}: aligned"] = aligned(lines)
        strings[f"{label}: steps"] = format_steps(trace(derivation), "latex")
        at_point = trace(derivation, at=at)
        strings[f"{label}: steps at"] = format_steps(at_point, "latex")
        # the directive's steps table: a cell per step, and the point
        for i, step in enumerate(at_point.steps):
            strings[f"{label}: step cell {i}"] = rf"\displaystyle {step_latex(step)}"
        strings[f"{label}: steps at the point"] = where_latex(at_point)
        strings[f"{label}: forward steps at"] = format_steps(
            trace(derivation, at=at, mode="forward"), "latex"
        )
        strings[f"{label}: values"] = values_latex(derivation, at)

    for row in catalog_rows():
        expression = catalog_expression(row)
        for convention in ("torch", "jax") if row["derivative_jax"] else ("torch",):
            derivation = symgrad.derive(expression, convention=convention)
            add(
                f"{expression} [{convention}]",
                derivation,
                _point(row, derivation.inputs),
            )
    for name, (expression, _) in SEEDS.items():
        derivation = symgrad.derive(expression)
        at = gallery.get(name, {}).get("at")
        values = parse_values(at) if at else {n: 0.5 for n in derivation.inputs}
        add(f"seed {name}", derivation, values)
    return strings


KATEX_SCRIPT = """
const katex = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const errors = {};
  for (const [label, tex] of Object.entries(JSON.parse(input))) {
    try {
      katex.renderToString(tex, {throwOnError: true, displayMode: true});
    } catch (error) {
      errors[label] = String(error.message) + "\\n" + tex;
    }
  }
  process.stdout.write(JSON.stringify(errors));
});
"""


def _node_and_katex() -> tuple[str, Path]:
    """Node.js, and KaTeX's script for require(): the copy shipped inside symgrad,
    which test_shipped_katex_is_npms_pinned_copy checks."""
    node = shutil.which("node")
    if not node:
        missing_tool("the KaTeX checks need Node.js (Debian: apt-get install nodejs)")
    katex = find_katex()
    assert katex, "no KaTeX in symgrad/katex"
    return str(node), katex / "katex.min.js"


def test_every_latex_string_renders_with_katex() -> None:
    node, katex = _node_and_katex()
    strings = _latex_strings()
    assert len(strings) > 400
    result = subprocess.run(
        [node, "-e", KATEX_SCRIPT, str(katex)],
        input=json.dumps(strings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    errors = json.loads(result.stdout)
    assert errors == {}, "\n\n".join(f"{k}: {v}" for k, v in errors.items())


def test_katex_fails_on_bad_latex() -> None:  # the check above can fail
    node, katex = _node_and_katex()
    result = subprocess.run(
        [node, "-e", KATEX_SCRIPT, str(katex)],
        input=json.dumps({"bad": r"\frac{1}{", "unknown": r"\notacommand x"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert set(json.loads(result.stdout)) == {"bad", "unknown"}


# --- the gallery in a browser ---------------------------------------------------------
class _Text(HTMLParser):
    """The text a reader sees: not scripts, styles, code, or KaTeX's TeX annotation."""

    HIDDEN = {"script", "style", "annotation", "pre", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.HIDDEN:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth == 0:
            self.parts.append(data)


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """The site over HTTP on the loopback address, and the requests it answered."""
    requests: list[tuple[str, int]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            requests.append((self.path, int(code)))

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        missing_tool(
            "the browser check needs Chromium (Debian: apt-get install chromium)"
        )
    return str(binary)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = _chromium_binary()
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


def test_the_gallery_is_typeset_in_a_browser(served, tmp_path: Path) -> None:
    _chromium_binary()  # without Chromium: skipped, or failed where required
    url, requests = served
    dom = _chromium("--dump-dom", f"{url}/gallery.html")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    # KaTeX ran: a typeset formula per math element (a display block per seed, and
    # the steps' table cells), no errors, no TeX left as text
    katex = len(re.findall(r'class="katex"', page))
    blocks = page.count('class="symgrad-math symgrad-display"')
    cells = page.count('class="math notranslate symgrad-math"')
    assert blocks == len(SEEDS) and cells > 5 * len(SEEDS), (blocks, cells)
    assert katex == blocks + cells, (katex, blocks, cells)
    assert page.count('<table class="symgrad-steps') == len(SEEDS)
    assert "katex-error" not in page
    text = _Text()
    text.feed(page)
    seen = "".join(text.parts)
    for tex in (r"\frac", r"\begin{aligned}", r"\partial", r"\left("):
        assert tex not in seen, tex
    assert "erf" in seen and "Gallery" in seen
    # the browser fetched KaTeX's script, style and fonts, and the plots, from the site
    fetched = {path.split("?")[0] for path, code in requests if code in (200, 304)}
    assert "/_static/katex/katex.min.js" in fetched
    assert "/_static/katex/katex.min.css" in fetched
    assert any(p.startswith("/_static/katex/fonts/KaTeX_") for p in fetched), fetched
    assert sum(p.startswith("/_images/plot-") for p in fetched) >= len(SEEDS) - 1

    shot = tmp_path / "gallery.png"
    result = _chromium(
        "--window-size=1200,1800", f"--screenshot={shot}", f"{url}/gallery.html"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1200, 1800)
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 100).mean() > 0.01  # text, formulas and a plot, not a blank page


# --- every page fits its column, in a browser -----------------------------------------
# Loads pages in iframes of a given width (query: pages=a.html,b.html&widths=1200,800),
# waits for KaTeX and the fonts, and lists, per page and width, what does not fit: the
# page scrolling sideways, an element of the content column that scrolls or clips
# sideways (a block whose end is out of view), or one that sticks out of the column.
# KaTeX's own inner boxes are not looked into (its square roots clip a long svg).
MEASURE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body><pre id="out">running</pre>
<script>
function measure(doc) {
  const problems = [];
  const root = doc.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push("the page scrolls sideways: " + root.scrollWidth + "px in "
      + root.clientWidth + "px");
  }
  const column = doc.querySelector("div.body") || doc.body;
  const right = column.getBoundingClientRect().right;
  const describe = (el) => {
    const section = el.closest("section");
    return el.tagName.toLowerCase() + "." + String(el.className).replace(/ /g, ".")
      + (section && section.id ? " in #" + section.id : "") + ": "
      + (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 70);
  };
  const seen = new Set();
  for (const el of column.querySelectorAll("*")) {
    const parent = el.parentElement;
    if (parent && (parent.closest(".katex") || seen.has(parent))) {
      seen.add(el);
      continue;
    }
    const style = doc.defaultView.getComputedStyle(el);
    if (style.display === "none") continue;
    if (style.overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1) {
      problems.push("scrolls " + (el.scrollWidth - el.clientWidth) + "px: "
        + describe(el));
      seen.add(el);
    } else if (el.getBoundingClientRect().right > right + 1) {
      problems.push("sticks out "
        + Math.round(el.getBoundingClientRect().right - right) + "px: "
        + describe(el));
      seen.add(el);
    }
  }
  return problems;
}
const query = new URLSearchParams(location.search);
const widths = query.get("widths").split(",").map(Number);
const results = {};
let pending = 0;
for (const page of query.get("pages").split(",")) {
  for (const width of widths) {
    pending += 1;
    const frame = document.createElement("iframe");
    frame.style.width = width + "px";
    frame.style.height = "900px";
    frame.addEventListener("load", () => {
      frame.contentDocument.fonts.ready.then(() => {
        results[page + " at " + width + "px"] = measure(frame.contentDocument);
        if (--pending === 0) {
          document.getElementById("out").textContent = JSON.stringify(results);
        }
      });
    });
    frame.src = page;
    document.body.appendChild(frame);
  }
}
</script></body></html>
"""
# A page that does not fit, twice: the measurement must find both.
TOO_WIDE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body><div class="body">
<pre style="overflow-x: auto">%s</pre><div style="width: 3000px">wide</div>
</div></body></html>
""" % ("a long line " * 100)
WIDTHS = (1200, 800)  # a desktop window, and a narrow one (the theme's small layout)


def _misfits(served, site: Path, pages: list[str]) -> dict[str, list[str]]:
    """What does not fit, per page and window width (MEASURE_HTML)."""
    url, _ = served
    (site / "measure.html").write_text(MEASURE_HTML, encoding="utf-8")
    query = f"pages={','.join(pages)}&widths={','.join(map(str, WIDTHS))}"
    dom = _chromium("--dump-dom", f"{url}/measure.html?{query}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="out">(.*?)</pre>', dom.stdout, re.S)
    assert found and found.group(1) != "running", dom.stdout[-2000:]
    results: dict[str, list[str]] = json.loads(html.unescape(found.group(1)))
    assert len(results) == len(pages) * len(WIDTHS), results.keys()
    return results


def test_every_page_fits_its_column_in_a_browser(served, site: Path) -> None:
    """No page scrolls sideways, and nothing in it does, nor sticks out of the content
    column: the steps, the formulas, the console output and the code all fit (the
    steps wrap; a formula too wide is set smaller; long lines of code wrap)."""
    _chromium_binary()  # without Chromium: skipped, or failed where required
    (site / "too-wide.html").write_text(TOO_WIDE_HTML, encoding="utf-8")
    pages = [f"{p}.html" for p in (*PAGES, "notebook")]
    results = _misfits(served, site, [*pages, "too-wide.html"])
    for width in WIDTHS:  # the measurement can fail: it finds the page made not to fit
        problems = results.pop(f"too-wide.html at {width}px")
        assert any(p.startswith("the page scrolls sideways") for p in problems)
        assert any(p.startswith("scrolls") and "pre." in p for p in problems)
    misfits = {page: problems for page, problems in results.items() if problems}
    assert misfits == {}, json.dumps(misfits, indent=1)


# --- the tutorial's console blocks ----------------------------------------------------
def _env() -> dict[str, str]:
    """The environment for a subprocess in another folder: this checkout's symgrad."""
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))


def _console_blocks(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for each `$ ` line of the ```console blocks."""
    runs = []
    for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
        for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
            command, _, output = chunk.partition("\n")
            runs.append((command, output))
    return runs


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    if words[0] == "symgrad":
        return [sys.executable, "-m", "symgrad.cli", *words[1:]]
    assert words[0] == "python", command
    return [sys.executable, *words[1:]]


def _run_console_blocks(path: Path, cwd: Path) -> int:
    """Run each command of the file's console blocks in cwd; compare what it prints.

    A blank line after a command's output separates it from the next command; an
    output that starts with `symgrad: error:` is the standard error of a command that
    exits with status 2."""
    runs = _console_blocks(path.read_text(encoding="utf-8"))
    env = _env()
    for command, shown in runs:
        expected = shown[:-1] if shown.endswith("\n\n") else shown
        result = subprocess.run(
            _argv(command),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
            env=env,
        )
        if expected.startswith("symgrad: error:"):
            assert result.returncode == 2, (command, result.stdout, result.stderr)
            assert (result.stdout, result.stderr) == ("", expected), command
            continue
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout == expected, command
    return len(runs)


def test_the_tutorials_commands_print_what_it_shows(tmp_path: Path) -> None:
    assert _run_console_blocks(DOCS / "tutorial.md", tmp_path) >= 8
    assert (tmp_path / "clip.png").is_file() and (
        tmp_path / "sin_cos_norm.py"
    ).is_file()


def test_the_where_pages_commands_print_what_it_shows(tmp_path: Path) -> None:
    assert _run_console_blocks(DOCS / "where.md", tmp_path) >= 4
    assert (tmp_path / "safe_inverse.py").is_file()


def test_the_readmes_commands_print_what_it_shows(tmp_path: Path) -> None:
    assert _run_console_blocks(ROOT / "README.md", tmp_path) >= 8
    assert (tmp_path / "sin_cos_norm.py").is_file()


def test_the_second_order_pages_commands_and_snippets_print_what_it_shows(
    tmp_path: Path,
) -> None:
    """docs/second_order.md: its console blocks (which write the modules), then each
    ```python block and the ```text block after it, run beside those modules."""
    page = DOCS / "second_order.md"
    assert _run_console_blocks(page, tmp_path) >= 5
    text = page.read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```\n+[^`]*?```text\n(.*?)```", text, re.S)
    assert len(snippets) == 2
    for code, expected in snippets:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=_env(),
        )
        assert result.returncode == 0, (code, result.stderr)
        assert result.stdout == expected, code


def test_the_where_pages_pytorch_snippets_print_what_it_shows() -> None:
    """The PyTorch side of docs/where.md: each ```python block and the ```text block
    after it (the site is built without PyTorch; these run where it is installed)."""
    text = (DOCS / "where.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```\n+[^`]*?```text\n(.*?)```", text, re.S)
    assert len(snippets) == 4
    pytest.importorskip("torch")
    for code, expected in snippets:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, (code, result.stderr)
        assert result.stdout == expected, code


def _shown(page: str, pattern: str) -> list[str]:
    """The text of each match of `pattern` (group 1) in a page, as a reader sees it."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m))
        for m in re.findall(pattern, page, re.S)
    ]


def test_the_gallerys_commands_write_the_modules_it_shows(
    site: Path, tmp_path: Path
) -> None:
    """Each `symgrad generate` command the gallery prints runs as printed, and writes
    the module shown below it, byte for byte: the one committed in generated/."""
    page = (site / "gallery.html").read_text(encoding="utf-8")
    commands = _shown(page, r'<p class="symgrad-code">.*?<code[^>]*>(.*?)</code>')
    modules = _shown(
        page,
        r'<div class="highlight-python[^>]*><div class="highlight">'
        r"<pre>(.*?)</pre>",
    )
    assert len(commands) == len(modules) == len(SEEDS)
    env = _env()
    for name, command, module in zip(SEEDS, commands, modules, strict=True):
        assert command.endswith(f" -o generated/{name}.py"), command
        result = subprocess.run(
            _argv(command), capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert result.returncode == 0, (command, result.stderr)
        written = (tmp_path / "generated" / f"{name}.py").read_text(encoding="utf-8")
        assert written == module, command
        assert written == (ROOT / "generated" / f"{name}.py").read_text("utf-8")


# --- the extension in a project of its own --------------------------------------------
def _build(tmp_path: Path, pages: dict[str, str]) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(  # KaTeX: the copy inside symgrad, as for users
        'extensions = ["myst_parser", "symgrad.sphinx"]\n', encoding="utf-8"
    )
    for name, text in pages.items():
        (source / name).write_text(text, encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            str(source),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(),
    )


def test_a_bad_expression_fails_the_build_where_it_is(tmp_path: Path) -> None:
    result = _build(
        tmp_path,
        {"index.rst": "Title\n=====\n\n.. symgrad:: sinn(x) + 1\n   :steps:\n"},
    )
    assert result.returncode != 0
    assert "index.rst:4" in result.stderr, result.stderr
    assert "unknown function 'sinn'" in result.stderr, result.stderr


def test_values_at_a_point_from_myst(tmp_path: Path) -> None:
    page = "# Title\n\n```{symgrad} x*y\n:at: x=2, y=[1,2]\n:wrt: y\n```\n"
    result = _build(tmp_path, {"index.md": page})
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert r"\frac{\partial f}{\partial y} &amp;= \left[2.0, 2.0\right]" in text
    assert r"\frac{\partial f}{\partial x}" not in text  # :wrt: y
    assert "katex/katex.min.js" in text and CDN.search(text) is None


def test_code_shows_the_module_its_command_writes(tmp_path: Path) -> None:
    """`:code:` prints a `symgrad generate` command that runs as printed and writes
    the module shown, byte for byte (with `:wrt:`, the module of every input)."""
    page = (
        "# Title\n\n```{symgrad} abs(x)*y\n:wrt: y\n:code:\n:output: out/m.py\n"
        ":convention: jax\n```\n"
    )
    result = _build(tmp_path, {"index.md": page})
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    (command,) = _shown(text, r'<p class="symgrad-code">.*?<code[^>]*>(.*?)</code>')
    (module,) = _shown(
        text,
        r'<div class="highlight-python[^>]*><div class="highlight"><pre>(.*?)</pre>',
    )
    assert command == "symgrad generate 'abs(x)*y' -o out/m.py --convention jax"
    run = tmp_path / "run"
    run.mkdir()
    done = subprocess.run(
        _argv(command), capture_output=True, text=True, cwd=run, env=_env()
    )
    assert done.returncode == 0, done.stderr
    assert (run / "out" / "m.py").read_text(encoding="utf-8") == module


def test_shipped_katex_is_npms_pinned_copy() -> None:
    """symgrad/katex (in the wheel, for users' docs) equals package.json's KaTeX."""
    shipped = ROOT / "symgrad" / "katex"
    dist = ROOT / "node_modules" / "katex" / "dist"
    if not dist.is_dir():
        missing_tool("comparing the shipped KaTeX needs npm's copy: run `npm ci`")
    names = ["katex.min.js", "katex.min.css"] + [
        f"fonts/{p.name}" for p in sorted((dist / "fonts").glob("*.woff2"))
    ]
    for name in names:
        assert (shipped / name).read_bytes() == (dist / name).read_bytes(), name
    assert (shipped / "LICENSE").read_bytes() == (dist.parent / "LICENSE").read_bytes()
