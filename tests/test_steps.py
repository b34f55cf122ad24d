"""`symgrad.steps`: the backward pass step by step (`symgrad derive --steps`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import symgrad
from symgrad import numpy_code, registry, steps
from symgrad.catalog import catalog_rows
from symgrad.registry import SMOOTH

ROOT = Path(__file__).resolve().parent.parent

COS_TEXT = """\
f(x) = cos(x**2)
at x = 0.5

forward trace (each step once, arguments first):
  v1    = x**2            pow               0.25
  v2    = cos(v1) = f     cos               0.9689124217106447

backward trace (v̄k = d sum(f) / d vk, in reverse order):
  v̄2    = 1               seed              1.0
          note: the gradient of the sum of the output, as f(x).sum().backward() starts
  v̄1    = v̄2·(-sin(v1))   chain rule (cos)  -0.24740395925452294
  x̄     = v̄1·(2*x)        power rule        -0.24740395925452294

result:
  f     = cos(x**2)       value             0.9689124217106447
  df/dx = -2*x*sin(x**2)  simplified        -0.24740395925452294"""

COS_LATEX = r"""\begin{aligned}
v_{1} &= x^{2} &&= 0.25 &&\text{pow} \\
f = v_{2} &= \cos{\left(v_{1} \right)} &&= 0.9689124217106447 &&\text{cos} \\
\bar{v}_{2} &= 1 &&= 1.0 &&\text{seed; the gradient of the sum of the output, as f(x).sum().backward() starts} \\
\bar{v}_{1} &= \bar{v}_{2} \cdot \left(- \sin{\left(v_{1} \right)}\right) &&= -0.24740395925452294 &&\text{chain rule (cos)} \\
\bar{x} &= \bar{v}_{1} \cdot 2 x &&= -0.24740395925452294 &&\text{power rule} \\
f &= \cos{\left(x^{2} \right)} &&= 0.9689124217106447 &&\text{value} \\
\frac{\partial f}{\partial x} &= - 2 x \sin{\left(x^{2} \right)} &&= -0.24740395925452294 &&\text{simplified}
\end{aligned}"""  # noqa: E501


def assert_balanced_latex(tex: str) -> None:
    """Braces, \\left/\\right and \\begin/\\end pair up; ASCII only."""
    assert tex.isascii(), tex
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, tex
    assert depth == 0, tex
    lefts = len(re.findall(r"\\left(?![a-zA-Z])", tex))
    rights = len(re.findall(r"\\right(?![a-zA-Z])", tex))
    assert lefts == rights, tex
    stack: list[str] = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, tex
    assert not stack, tex


def math_blocks(markdown: str) -> list[str]:
    blocks = re.findall(r"\$\$(.*?)\$\$", markdown, re.S)
    rest = re.sub(r"\$\$.*?\$\$", "", markdown, flags=re.S)
    return blocks + re.findall(r"\$([^$]+)\$", rest)


# --- the seed example, exactly --------------------------------------------------------
def test_cos_x_squared_text_exact() -> None:
    trace = steps.trace(symgrad.derive("cos(x**2)"), at={"x": 0.5})
    text = steps.format_steps(trace, "text")
    assert text == COS_TEXT
    for number in ("0.25", "0.9689124217106447", "-0.24740395925452294"):
        assert number in text
    names = {s.name: s for s in trace.steps if s.phase != "result"}
    assert float(names["v1"].value) == 0.25
    assert float(names["v2"].value) == 0.9689124217106447 and names["v2"].alias == "f"
    assert float(names["x̄"].value) == -0.24740395925452294


def test_cos_x_squared_latex_exact() -> None:
    trace = steps.trace(symgrad.derive("cos(x**2)"), at={"x": 0.5})
    tex = steps.format_steps(trace, "latex")
    assert tex == COS_LATEX
    assert_balanced_latex(tex)
    assert tex.count(r"\begin{aligned}") == 1


def test_cos_x_squared_without_values() -> None:
    trace = steps.trace(symgrad.derive("cos(x**2)"))
    lines = steps.format_steps(trace, "text").splitlines()
    assert "  v1    = x**2            pow" in lines
    assert "  v2    = cos(v1) = f     cos" in lines
    assert "  v̄1    = v̄2·(-sin(v1))   chain rule (cos)" in lines
    assert "  x̄     = v̄1·(2*x)        power rule" in lines
    assert "  df/dx = -2*x*sin(x**2)  simplified" in lines
    data = json.loads(steps.format_steps(trace, "json"))
    assert all(step["value"] is None for step in data["steps"]) and "at" not in data


# --- the same program, the same numbers as the generated code ------------------------
def generated_values(derivation: symgrad.Derivation, values: dict) -> dict[str, object]:
    """Every named line of the generated module, run in the module's own namespace.

    The module source is compiled here, in the test only: f and the gradients come from
    its `value_and_grad`; each forward line `_v<k>` and each line `_g<k>` of the
    default backward pass is run on the module's helpers, in order.
    """
    namespace: dict[str, object] = {}
    exec(compile(derivation.module_source(), "<generated>", "exec"), namespace)  # noqa: S102
    args = [values[n] for n in derivation.inputs]
    value, grads = namespace["value_and_grad"](*args)
    lowered = numpy_code.lower(derivation.program)
    local = dict(namespace)
    local.update(
        {n: np.asarray(values[n], dtype=np.float64) for n in derivation.inputs}
    )
    with np.errstate(all="ignore"):
        for line in lowered.forward + lowered.default_backward:
            local[line.name] = eval(line.code, local)  # noqa: S307
    names = [line.name for line in lowered.forward + lowered.default_backward]
    out = {name: local[name] for name in names}
    out["value"] = value
    out.update({f"grad_{n}": g for n, g in zip(derivation.inputs, grads, strict=True)})
    return out


@pytest.mark.parametrize(
    "text",
    [
        "cos(x**2)",
        "x/y**2 + x*y",
        "sin(cos(norm(x)**2 + 1))",
        "abs(x)*x",
        "where(x > 0, sqrt(x), x)",
        "(x > 0)*x + max(x)",
        "clip(x, -0.5, y)*exp(y)",
    ],
)
def test_step_values_are_the_generated_modules(text: str) -> None:
    derivation = symgrad.derive(text)
    values = {n: np.array([0.7, -1.3]) + i for i, n in enumerate(derivation.inputs)}
    trace = steps.trace(derivation, at=values)
    generated = generated_values(derivation, values)
    np.testing.assert_array_equal(trace.value, generated["value"])
    np.testing.assert_array_equal(trace.results[0].value, generated["value"])
    by_name = {s.name: s for s in trace.backward}
    for k, name in enumerate(derivation.inputs, start=1):
        grad = generated[f"grad_{name}"]
        np.testing.assert_array_equal(by_name[f"{name}\u0304"].value, grad)
        np.testing.assert_array_equal(trace.results[k].value, grad)
    # each step that is a line of the generated code has that line's value
    checked = 0
    for step in trace.forward + trace.backward:
        if step.code_name in generated:
            expected = np.asarray(generated[step.code_name])
            if expected.dtype.kind == "b":
                expected = expected.astype(np.float64)
            np.testing.assert_array_equal(
                step.value, np.broadcast_to(expected, np.shape(step.value))
            )
            checked += 1
    assert checked >= len(trace.forward)
    # the forward steps are the program's nodes, in order, named v1, v2, ...
    program = derivation.program
    shown = [n for n in program.forward_nodes if n.op not in ("input", "const")]
    shown = [n for n in shown if n.op not in ("dtype", "float")]
    assert [s.name for s in trace.forward] == [
        f"v{k}" for k in range(1, len(shown) + 1)
    ]
    assert [s.rule for s in trace.forward] == [n.op for n in shown]
    assert trace.forward[-1].alias == "f"
    assert not trace.remarks


def test_steps_follow_the_expression_as_written() -> None:
    trace = steps.trace(symgrad.derive("x/y**2 + x*y"), at={"x": 2.0, "y": 3.0})
    assert [(s.name, s.expression, s.code_name) for s in trace.forward] == [
        ("v1", "y**2", "_v1"),
        ("v2", "x/v1", "_v2"),
        ("v3", "x*y", "_v3"),
        ("v4", "v2 + v3", "_v4"),
    ]
    rules = {s.name: s.rule for s in trace.backward}
    assert rules["x̄"] == "product rule + quotient rule"
    assert rules["v̄2"] == "sum rule"
    assert float(trace.forward[1].value) == 2.0 / 9.0
    # x/x is a division, nan at 0, as the generated code computes it
    same = steps.trace(symgrad.derive("x/x"), at={"x": 0.0})
    assert [(s.expression, s.rule) for s in same.forward] == [("x/x", "div")]
    assert np.isnan(same.forward[0].value) and np.isnan(same.backward[-1].value)


def test_masks_used_as_numbers_are_their_comparison() -> None:
    trace = steps.trace(symgrad.derive("(x > 0)*x"), at={"x": np.array([-1.0, 2.0])})
    assert [(s.name, s.expression) for s in trace.forward] == [
        ("v1", "(x > 0)"),
        ("v2", "v1*x"),
    ]
    backward = {s.name: s for s in trace.backward}
    assert backward["x̄"].expression == "v̄2·v1"
    assert backward["x̄"].rule == "product rule + gt: derivative 0"
    np.testing.assert_array_equal(backward["v̄1"].value, [-1.0, 2.0])
    np.testing.assert_array_equal(backward["x̄"].value, [0.0, 1.0])


def test_where_branch_not_taken_sends_nothing() -> None:
    """Unlike PyTorch (and JAX): nan where sqrt's branch is not taken."""
    x = np.array([-1.0, 4.0])
    trace = steps.trace(symgrad.derive("where(x > 0, sqrt(x), x)"), at={"x": x})
    x_bar = trace.backward[-1]
    assert x_bar.name == "x̄"
    assert "where(v1, v̄2·(1/(2*sqrt(x))), 0)" in x_bar.expression
    assert "chain rule (sqrt), where branch" in x_bar.rule
    assert any("branch not taken sends nothing" in n for n in x_bar.notes)
    np.testing.assert_array_equal(x_bar.value, [1.0, 0.25])
    t = torch.tensor(x, requires_grad=True)
    torch.where(t > 0, torch.sqrt(t), t).sum().backward()
    assert np.isnan(t.grad[0].item()) and t.grad[1].item() == 0.25


# --- the vector example against PyTorch -----------------------------------------------
def test_vector_example_matches_torch_autograd() -> None:
    x = np.array([0.3, -0.7, 1.1])
    trace = steps.trace(symgrad.derive("sin(cos(norm(x)**2 + 1))"), at={"x": x})
    t = torch.tensor(x, requires_grad=True)
    v1 = torch.linalg.vector_norm(t)
    v2 = v1**2
    v3 = v2 + 1
    v4 = torch.cos(v3)
    v5 = torch.sin(v4)
    for v in (v1, v2, v3, v4, v5):
        v.retain_grad()
    v5.backward()
    forward = {s.name: s.value for s in trace.forward}
    backward = {s.name: s.value for s in trace.backward}
    for k, v in enumerate((v1, v2, v3, v4, v5), start=1):
        assert float(forward[f"v{k}"]) == pytest.approx(v.item(), rel=1e-14)
        assert float(backward[f"v\u0304{k}"]) == pytest.approx(v.grad.item(), rel=1e-13)
    np.testing.assert_allclose(backward["x̄"], t.grad.numpy(), rtol=1e-14)
    text = steps.format_steps(trace, "text")
    assert "at x = [0.3, -0.7, 1.1] (shape (3,))" in text
    assert "(shape (3,))" in text.split("x̄")[1].splitlines()[0]
    assert "reduction: norm" in text and "at x = 0 the gradient is 0" in text
    data = json.loads(steps.format_steps(trace, "json"))
    x_bar = next(s for s in data["steps"] if s["name"] == "x̄")
    assert x_bar["shape"] == [3] and x_bar["rule"] == "reduction: norm"
    np.testing.assert_allclose(x_bar["value"], t.grad.numpy(), rtol=1e-14)


# --- rule names -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "name", "rule"),
    [
        ("x*y + 2", "x̄", "product rule"),
        ("x/y", "y\u0304", "quotient rule"),
        ("x**3", "x̄", "power rule"),
        ("2**x", "x̄", "exponential rule"),
        ("exp(x) + x", "x̄", "sum rule + chain rule (exp)"),
        ("mean(x)", "x̄", "reduction: mean"),
        ("max(x)", "x̄", "reduction: max"),
        ("norm(x)*x", "v̄1", "product rule, summed (v1 is a scalar)"),
        ("x < y", "x̄", "lt: derivative 0"),
    ],
)
def test_rule_names(text: str, name: str, rule: str) -> None:
    trace = steps.trace(symgrad.derive(text))
    assert {s.name: s.rule for s in trace.backward}[name] == rule


def test_kink_conventions_are_named_at_their_step() -> None:
    trace = steps.trace(symgrad.derive("abs(x)"), at={"x": 0.0})
    x_bar = trace.backward[-1]
    assert x_bar.rule == "chain rule (abs)"
    assert any("abs'(0) is taken as 0, as PyTorch does" in n for n in x_bar.notes)
    assert float(x_bar.value) == 0.0
    jax = steps.trace(symgrad.derive("abs(x)", convention="jax"), at={"x": 0.0})
    assert any("JAX" in n for n in jax.backward[-1].notes)
    assert float(jax.backward[-1].value) == 1.0
    floor = steps.trace(symgrad.derive("floor(x)*x"))
    notes = " ".join(n for s in floor.backward for n in s.notes)
    assert "floor(x): piecewise constant" in notes


def test_bad_values_and_format() -> None:
    derivation = symgrad.derive("x + y")
    with pytest.raises(symgrad.SymgradError):
        steps.trace(derivation, at={"x": 1.0})
    with pytest.raises(ValueError, match="unknown format"):
        steps.format_steps(steps.trace(derivation), "html")


# --- every catalog row, every format --------------------------------------------------
PUBLIC = {row["name"] for row in catalog_rows()}
ROWS = [rule for rule in registry.RULES if rule.name in PUBLIC]
ARGS = ("x", "y", "z")


def row_expression(rule: registry.Rule) -> str:
    args = ARGS[: rule.arity[0]]
    if rule.names:
        return f"{rule.names[0]}({', '.join(args)})"
    if rule.name == "polygamma":
        return "digamma(x)"
    return re.sub(r"\bb\b", "y", re.sub(r"\ba\b", "x", rule.signature))


def row_values(rule: registry.Rule, inputs: tuple[str, ...]) -> dict[str, np.ndarray]:
    domains = [d for i, d in enumerate(rule.domain) if i not in rule.fixed_args]
    return {
        name: np.array([lo + 0.37 * (hi - lo), lo + 0.71 * (hi - lo)])
        for name, (lo, hi) in zip(inputs, domains, strict=False)
    }


@pytest.mark.parametrize("rule", ROWS, ids=lambda r: r.name)
def test_catalog_row_steps_in_every_format(rule: registry.Rule) -> None:
    derivation = symgrad.derive(row_expression(rule))
    for at in (None, row_values(rule, derivation.inputs)):
        trace = steps.trace(derivation, at=at)
        out = {fmt: steps.format_steps(trace, fmt) for fmt in steps.FORMATS}
        data = json.loads(out["json"])["steps"]
        assert {"name", "expression", "latex", "rule", "note", "value"} <= set(data[0])
        assert [s["phase"] for s in data if s["phase"] == "backward"]
        assert_balanced_latex(out["latex"])
        assert out["latex"].count(r"\begin{aligned}") == 1
        for block in math_blocks(out["markdown"]):
            assert_balanced_latex(block)
        if at is not None:
            assert not trace.remarks
            assert all(s.value is not None for s in trace.forward + trace.backward)
        if rule.kink == SMOOTH:
            continue
        # kink rows mention their convention, in every format
        assert derivation.notes
        for note in derivation.notes:
            assert note in out["text"]
            assert steps.latex_text(note) in out["latex"]
            assert any(note in s["notes"] for s in data)
        if rule.cls in registry.F.MASKS:
            assert "piecewise constant" in out["text"]
        else:
            assert rule.kink in out["text"]


def test_catalog_latex_renders_with_katex() -> None:
    """Valid LaTeX for a renderer, not only balanced (KaTeX: `npm ci` at the root)."""
    from test_docs import missing_tool  # a skip, or a failure where CI requires it

    katex = ROOT / "node_modules" / "katex"
    node = shutil.which("node")
    if node is None or not katex.is_dir():
        missing_tool("the KaTeX check needs Node.js and `npm ci` at the repo root")
    items: list[tuple[str, str]] = []
    for rule in ROWS:
        derivation = symgrad.derive(row_expression(rule))
        trace = steps.trace(derivation, at=row_values(rule, derivation.inputs))
        items.append((rule.name, steps.format_steps(trace, "latex")))
        markdown = steps.format_steps(trace, "markdown")
        items.extend((rule.name, block) for block in math_blocks(markdown))
    script = (
        f"const k = require({json.dumps(str(katex))});"
        "const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const bad = [];"
        "for (const [n, t] of items) { try { k.renderToString(t, "
        "{throwOnError: true, displayMode: true, strict: 'error'}); } "
        "catch (e) { bad.push(n + ': ' + e.message); } }"
        "console.log(JSON.stringify(bad));"
    )
    result = subprocess.run(
        [node, "-e", script],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_markdown_is_prose_and_math() -> None:
    trace = steps.trace(symgrad.derive("cos(x**2)"), at={"x": 0.5})
    md = steps.format_steps(trace, "markdown")
    assert md.count("$$") == 6  # forward, backward, result
    assert "**Backward trace.**" in md and r"- $\bar{x}$: power rule." in md
    assert "0.9689124217106447" in md and "-0.24740395925452294" in md
