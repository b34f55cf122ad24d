"""The steps as text, LaTeX, Markdown or JSON (`format_steps`).

- ``text``: aligned columns for a terminal (name, formula, rule, value), notes below
  their step;
- ``latex``: one ``aligned`` environment, ASCII only;
- ``markdown``: prose and ``$$ ... $$`` math;
- ``json``: an object with, as ``symgrad derive --format json`` has them, the
  ``expression`` (as SymPy shows it), the ``input`` (as typed), the ``inputs``, ``wrt``
  and ``convention``, and with values the point ``at`` (``inputs``, ``value`` and
  ``gradient``); then ``steps``, a list of steps, each with ``phase``, ``name``,
  ``name_latex``, ``alias``, ``expression``, ``latex``, ``rule``, ``note``, ``notes``,
  ``code_name``, ``shape`` and ``value``; ``notes``, the notes not given at a step; and
  ``remarks`` about the trace itself.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from symgrad.printing import to_latex, to_text
from symgrad.steps.tracing import Step, Trace, input_latex
from symgrad.values import jsonable, value_latex, value_text

FORMATS = ("text", "latex", "markdown", "json")


def format_steps(trace: Trace, fmt: str) -> str:
    """The trace as `text`, `latex`, `markdown` or `json` (see the module docstring)."""
    formatters: dict[str, Callable[[Trace], str]] = {
        "text": _format_text,
        "latex": _format_latex,
        "markdown": _format_markdown,
        "json": _format_json,
    }
    if fmt not in formatters:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return formatters[fmt](trace)


def _width(text: str) -> int:
    """Columns a terminal gives `text` (combining marks take none)."""
    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _signature(trace: Trace) -> str:
    return f"f({', '.join(trace.inputs)}) = {to_text(trace.expression)}"


def _at_text(trace: Trace) -> str:
    assert trace.at is not None
    return ", ".join(f"{n} = {value_text(v)}" for n, v in trace.at.items())


FORMULA_COLUMN = 44  # longer formulas put their rule and value on the next line


def _format_text(trace: Trace) -> str:
    with_values = trace.at is not None
    sections = [
        ("forward trace (each step once, arguments first):", trace.forward),
        (
            "backward trace (v\u0304k = d sum(f) / d vk, in reverse order):",
            trace.backward,
        ),
        ("result:", trace.results),
    ]
    if trace.mode == "forward":
        sections[1] = (
            "tangent trace (forward mode: v\u0307k = d vk along the tangents "
            + ", ".join(
                f"{n[:1]}\u0307{n[1:]} = {value_text(v)}"
                for n, v in (trace.tangents or {}).items()
            )
            + "; arguments first):",
            trace.backward,
        )
    rows = [step for _, steps in sections for step in steps]
    name_width = max((_width(s.name) for s in rows), default=1)

    def formula(step: Step) -> str:
        return step.expression + (f" = {step.alias}" if step.alias else "")

    formula_width = min(
        FORMULA_COLUMN, max((_width(formula(s)) for s in rows), default=1)
    )
    rule_width = max((_width(s.rule) for s in rows), default=1)

    lines = [_signature(trace)]
    if with_values:
        lines.append(f"at {_at_text(trace)}")
    for title, steps in sections:
        if not steps:
            continue
        lines += ["", title]
        for step in steps:
            left = f"  {_pad(step.name, name_width)} = "
            rest = f"{_pad(step.rule, rule_width)}"
            if with_values and step.value is not None:
                rest += f"  {value_text(step.value)}"
            text = formula(step)
            if _width(text) > formula_width:
                lines.append((left + text).rstrip())
                lines.append(" " * _width(left) + " " * formula_width + "  " + rest)
            else:
                lines.append(left + _pad(text, formula_width) + "  " + rest)
            lines[-1] = lines[-1].rstrip()
            for note in step.notes:
                lines.append(" " * _width(left) + f"note: {note}")
    for note in trace.notes:
        lines.append(f"note: {note}")
    for remark in trace.remarks:
        lines.append(f"({remark})")
    return "\n".join(lines)


_LATEX_TEXT = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "^": r"\^{}",
    "~": r"\~{}",
    "<": "$<$",
    ">": "$>$",
    "|": "$|$",
    "\u0304": "",
    "·": "$\\cdot$",
    "\u2032": "'",
}


def latex_text(text: str) -> str:
    """Plain text for `\\text{...}`: special characters escaped, ASCII only."""
    out = "".join(_LATEX_TEXT.get(ch, ch) for ch in text)
    return out.encode("ascii", "replace").decode("ascii")


def step_latex(step: Step, align: str = "") -> str:
    """The step as LaTeX, `name = formula` (`f = v2 = ...` for the output's step);
    `align` goes before the formula's `=` (`&` in an `aligned` block)."""
    name = step.name_latex
    if step.alias:
        alias = r"\dot{f}" if step.alias == "\u1e1f" else step.alias
        name = rf"{alias} = {name}"
    return f"{name} {align}= {step.latex}"


def where_latex(trace: Trace) -> str:
    """The point of a trace with values, as LaTeX: `x = 0.5, y = 2.0`."""
    assert trace.at is not None
    return ", ".join(
        f"{input_latex(n)} = {value_latex(v)}" for n, v in trace.at.items()
    )


def _latex_row(step: Step, with_values: bool, with_rule: bool = True) -> str:
    row = step_latex(step, "&")
    if with_values and step.value is not None:
        row += rf" &&= {value_latex(step.value)}"
    elif with_rule and with_values:
        row += " &&"
    if with_rule:
        words = "; ".join((step.rule, *step.notes))
        row += rf" &&\text{{{latex_text(words)}}}"
    return row


def _format_latex(trace: Trace) -> str:
    with_values = trace.at is not None
    rows = [
        _latex_row(step, with_values)
        for step in (*trace.forward, *trace.backward, *trace.results)
    ]
    if trace.notes:
        rows.append(r"&\text{" + latex_text("note: " + "; ".join(trace.notes)) + "}")
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def _markdown_text(text: str) -> str:
    return re.sub(r"([\\`*_<\[\]#|])", r"\\\1", text)


def _aligned(rows: list[str]) -> str:
    return "$$\n\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n$$"


def _format_markdown(trace: Trace) -> str:
    with_values = trace.at is not None
    args = ", ".join(input_latex(n) for n in trace.inputs)
    forward_mode = trace.mode == "forward"
    intro = (
        f"{'Forward' if forward_mode else 'Reverse'}-mode derivative of "
        f"$f({args}) = {to_latex(trace.expression)}$, step by step"
    )
    if with_values:
        intro += f", at ${where_latex(trace)}$"
    parts = [intro + "."]
    if trace.forward:
        parts.append(
            "**Forward trace.** Each intermediate value is computed once, its "
            "arguments first:"
        )
        parts.append(
            _aligned([_latex_row(s, with_values, False) for s in trace.forward])
        )
    if trace.backward and forward_mode:
        seeds = ", ".join(
            rf"\dot{{{input_latex(n)}}} = {value_latex(v)}"
            for n, v in (trace.tangents or {}).items()
        )
        parts.append(
            "**Tangent trace** (forward mode, dual numbers). $\\dot{v}_k$ is the "
            "derivative of $v_k$ along the inputs' tangents "
            f"${seeds}$. The steps run in the forward order; each tangent sums, over "
            "its arguments, the local partial derivative times the argument's tangent:"
        )
    elif trace.backward:
        parts.append(
            "**Backward trace.** $\\bar{v}_k$ is the gradient of the sum of the "
            "output with respect to $v_k$. The steps run in reverse order, starting "
            "from the seed $1$; each adjoint sums, over the steps that use it, their "
            "adjoint times the local partial derivative:"
        )
    if trace.backward:
        parts.append(
            _aligned([_latex_row(s, with_values, False) for s in trace.backward])
        )
        bullets = []
        for step in trace.backward:
            line = f"- ${step.name_latex}$: {_markdown_text(step.rule)}"
            for note in step.notes:
                line += f"; {_markdown_text(note)}"
            bullets.append(line + ".")
        parts.append("\n".join(bullets))
    if trace.results:
        parts.append("**Result**, simplified:")
        parts.append(
            _aligned([_latex_row(s, with_values, False) for s in trace.results])
        )
    notes = [f"- Note: {_markdown_text(n)}" for n in trace.notes]
    notes += [f"- {_markdown_text(r)}" for r in trace.remarks]
    if notes:
        parts.append("\n".join(notes))
    return "\n\n".join(parts)


def _format_json(trace: Trace) -> str:
    data: dict[str, Any] = {
        "expression": to_text(trace.expression),
        "input": trace.program.text,
        "inputs": list(trace.inputs),
        "wrt": list(trace.wrt),
        "convention": trace.convention,
    }
    if trace.at is not None:  # the point, its value and gradient, as `derive` gives
        data["at"] = {
            "inputs": {n: jsonable(v) for n, v in trace.at.items()},
            "value": jsonable(trace.value),
            "gradient": {n: jsonable(v) for n, v in (trace.gradients or {}).items()},
        }
    data["steps"] = [step.to_dict() for step in trace.steps]
    data["notes"] = list(trace.notes)
    data["remarks"] = list(trace.remarks)
    return json.dumps(data, indent=2, ensure_ascii=False)


__all__ = ["FORMATS", "format_steps", "latex_text", "step_latex", "where_latex"]
