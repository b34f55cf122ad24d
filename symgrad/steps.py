"""The backward pass, step by step (`symgrad derive --steps`).

Contract:

- `trace(derivation, at=None)` walks THE reverse program that the generated NumPy code
  runs: `program.build(expression, inputs, inputs, convention, readable=True)`, which
  has the same nodes, in the same order, as `derivation.exact_program` (only the
  partial derivatives are written in their readable form). It is never a second,
  separate derivation; if the readable build ever differed in structure from the exact
  one, the exact program itself is shown.
- Program names: forward steps are numbered v1, v2, ... in the order of the forward
  trace (inputs keep their names, constants are inlined); the output is also called
  `f`. Adjoints are written v̄k (LaTeX ``\\bar{v}_{k}``), inputs x̄ (``\\bar{x}``);
  v̄k is the gradient of the sum of the output with respect to vk (the seed v̄ of the
  output is 1, as `f(x).sum().backward()`).
- Each backward step names the rule that produced each of its terms ("chain rule",
  "product rule", "quotient rule", "sum rule", "power rule", "exponential rule",
  "reduction: ...") and, where a function is not smooth, the kink convention used
  (the registry's `Rule.kink`). The trace ends with the simplified derivatives
  (`derivation.derivatives`).
- With `at` (input values, as `Derivation.evaluate` takes them), every step carries its
  value. f, the gradients x̄ and every forward step's value are read off the generated
  module's own `value_and_grad` while it runs (`Derivation.evaluate`): they are the
  generated code's numbers, bit for bit. The generated code folds the seed and inlines
  adjoints used once, so an intermediate adjoint v̄k may have no variable there; it is
  computed from those forward values with the generated code's spelling (the
  `numpy_code` emitter and `symgrad.runtime` helpers), one line per backward step. If
  the generated forward lines cannot be matched to the steps, intermediate values are
  left out (never guessed) and `Trace.remarks` says so.
- `format_steps(trace, fmt)` renders it as ``text`` (aligned columns for a terminal),
  ``latex`` (one ``aligned`` environment, ASCII only), ``markdown`` (prose and
  ``$$ ... $$`` math) or ``json`` (a list of steps, each with ``name``,
  ``expression``, ``latex``, ``rule``, ``note`` and ``value``, plus ``phase``,
  ``name_latex``, ``alias``, ``code_name`` and ``shape``).
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

import numpy as np
import sympy as sp

from symgrad import functions as F
from symgrad import numpy_code, program, render
from symgrad.derivation import Derivation
from symgrad.printing import to_latex, to_text
from symgrad.program import SEED, Program
from symgrad.registry import SMOOTH, Rule
from symgrad.values import as_number, jsonable, value_latex, value_text

FORMATS = ("text", "latex", "markdown", "json")
BAR = "\u0304"  # combining macron: v̄
SEED_RULE = "seed"
SEED_NOTE = "the gradient of the sum of the output, as f(x).sum().backward() starts"
# Arrays with more elements than this are shown by their first and last elements.


@dataclass(frozen=True)
class Step:
    """One line of the trace: `name = expression`, its rule, a note and a value."""

    phase: str  # "input", "forward", "backward" or "result"
    name: str  # as text: v1, v̄1, x̄, df/dx
    name_latex: str
    expression: str  # the right-hand side, as text (program names)
    latex: str  # the right-hand side, as LaTeX
    rule: str = ""
    notes: tuple[str, ...] = ()  # kink conventions that apply, and remarks
    value: Any = None  # the NumPy value at `at`, or None
    alias: str = ""  # "f" for the step that computes the output
    code_name: str = ""  # the value's name in the generated code (v1, grad_x)

    @property
    def note(self) -> str:
        """The notes as one line."""
        return " | ".join(self.notes)

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON-ready data."""
        return {
            "phase": self.phase,
            "name": self.name,
            "name_latex": self.name_latex,
            "alias": self.alias,
            "expression": self.expression,
            "latex": self.latex,
            "rule": self.rule,
            "note": self.note,
            "notes": list(self.notes),
            "code_name": self.code_name,
            "shape": None if self.value is None else list(np.shape(self.value)),
            "value": None if self.value is None else jsonable(self.value),
        }


@dataclass
class Trace:
    """The forward steps, the backward steps and the simplified derivatives."""

    expression: sp.Expr
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    convention: str
    program: Program = field(repr=False)  # the program shown (readable partials)
    input_steps: list[Step]
    forward: list[Step]
    backward: list[Step]
    results: list[Step]  # f, then df/d<input> for each input of interest
    derivatives: dict[str, sp.Expr]  # the simplified derivatives (SymPy)
    notes: list[str]  # kink conventions not already shown at a step
    at: dict[str, Any] | None = None  # the input values, or None
    value: Any = None  # f at `at`
    gradients: dict[str, Any] | None = None  # df/d<input> at `at`
    remarks: list[str] = field(default_factory=list)  # about the trace itself

    @property
    def steps(self) -> list[Step]:
        """Every step, in reading order."""
        return [*self.input_steps, *self.forward, *self.backward, *self.results]


# --- building the trace ---------------------------------------------------------------
def trace(derivation: Derivation, at: Mapping[str, Any] | None = None) -> Trace:
    """The steps of the reverse program of `derivation`, evaluated `at` if given.

    Raises `SymgradError` where `Derivation.evaluate` does (missing or extra input
    values, shapes that do not broadcast, input names the generated code reserves).
    """
    exact = derivation.exact_program
    shown = program.build(
        derivation.expression,
        derivation.inputs,
        exact.wrt,
        derivation.convention,
        readable=True,
    )
    if not _same_structure(exact, shown):
        shown = exact
    names = _Names(shown)

    numbers: _Numbers | None = None
    at_values: dict[str, Any] | None = None
    if at is not None:
        numbers = _numbers(derivation, exact, at)
        at_values = {n: np.asarray(at[n]) for n in derivation.inputs}
    value = None if numbers is None else numbers.value
    gradients = None if numbers is None else numbers.gradients
    code_names = {} if numbers is None else numbers.code_names

    def forward_value(index: int) -> Any:
        if numbers is None:
            return None
        if index == shown.output:
            return value
        return numbers.forward.get(index)

    input_steps = [
        Step(
            "input",
            n,
            names.latex_of(shown.nodes[i].var),
            "input",
            r"\text{input}",
            rule="input",
            value=None if at_values is None else as_number(at_values[n]),
            alias="f" if i == shown.output else "",
            code_name=n,
        )
        for i, n in enumerate(shown.inputs)
    ]

    forward: list[Step] = []
    for node in shown.nodes:
        if node.rule is None:
            continue
        local = names.show(node.local)
        forward.append(
            Step(
                "forward",
                names.text[node.index],
                names.latex[node.index],
                _text(local),
                to_latex(local),
                rule="div" if _has_divisor(node) else node.rule.name,
                value=forward_value(node.index),
                alias="f" if node.index == shown.output else "",
                code_name=code_names.get(node.index, ""),
            )
        )
    out = shown.nodes[shown.output]
    if out.rule is None and not out.is_input:  # a constant expression
        forward.append(
            Step(
                "forward",
                "f",
                "f",
                to_text(out.expr),
                to_latex(out.expr),
                rule="constant",
                value=value,
            )
        )

    backward = [
        step if numbers is None else _with_value(step, index, numbers, shown)
        for step, index in _backward_steps(shown, names, derivation)
    ]
    shown_notes = {note for step in backward for note in step.notes}
    notes = [n for n in derivation.notes if n not in shown_notes]

    results = [
        Step(
            "result",
            "f",
            "f",
            to_text(derivation.expression),
            to_latex(derivation.expression),
            rule="value",
            value=value,
        )
    ]
    for name, d in derivation.derivatives.items():
        results.append(
            Step(
                "result",
                f"df/d{name}",
                rf"\frac{{\partial f}}{{\partial {names.input_latex(name)}}}",
                to_text(d),
                to_latex(d),
                rule="simplified",
                value=None if gradients is None else gradients[name],
                code_name=f"grad_{name}" if gradients is not None else "",
            )
        )
    return Trace(
        expression=derivation.expression,
        inputs=derivation.inputs,
        wrt=derivation.wrt,
        convention=derivation.convention,
        program=shown,
        input_steps=input_steps,
        forward=forward,
        backward=backward,
        results=results,
        derivatives=dict(derivation.derivatives),
        notes=notes,
        at=at_values,
        value=value,
        gradients=gradients,
        remarks=[] if numbers is None else numbers.remarks,
    )


class _Names:
    """Display names: v1, v2, ... for the forward steps; v̄k and x̄ for adjoints."""

    def __init__(self, prog: Program) -> None:
        taken = set(prog.inputs)
        prefix = next(
            (
                p
                for p in ("v", "u", "w", "vv", "step")
                if not any(re.fullmatch(rf"{p}\d+", n) for n in taken)
            ),
            "step_",
        )
        self.symbols: dict[sp.Expr, sp.Expr] = {}
        self.text: dict[int, str] = {}
        self.latex: dict[int, str] = {}
        self.adjoint_text: dict[int, str] = {}
        self.adjoint_latex: dict[int, str] = {}
        count = 0
        for node in prog.nodes:
            if node.is_input:
                name = node.var.name
                self.text[node.index] = name
                self.latex[node.index] = self.latex_of(node.var)
                self.adjoint_text[node.index] = _bar_text(name)
                self.adjoint_latex[node.index] = self.input_latex(name, bar=True)
            elif node.rule is not None:
                count += 1
                symbol = sp.Symbol(f"{prefix}{count}", real=True)
                self.symbols[node.var] = symbol
                self.text[node.index] = symbol.name
                self.latex[node.index] = to_latex(symbol)
                self.adjoint_text[node.index] = f"{prefix}{BAR}{count}"
                self.adjoint_latex[node.index] = rf"\bar{{{prefix}}}_{{{count}}}"

    def show(self, expr: sp.Expr) -> sp.Expr:
        """`expr` in display names, with symgrad's internal helpers rewritten."""
        return program.display_form(expr.xreplace(self.symbols))

    @staticmethod
    def latex_of(symbol: sp.Expr) -> str:
        return to_latex(symbol)

    @staticmethod
    def input_latex(name: str, bar: bool = False) -> str:
        if not bar:
            return to_latex(sp.Symbol(name, real=True))
        match = re.fullmatch(r"([A-Za-z])_?(\d*)", name)
        if match:
            letter, digits = match.groups()
            return rf"\bar{{{letter}}}" + (f"_{{{digits}}}" if digits else "")
        return rf"\overline{{{to_latex(sp.Symbol(name, real=True))}}}"


def _bar_text(name: str) -> str:
    match = re.fullmatch(r"([A-Za-z])(_?\d*)", name)
    if match:
        return match.group(1) + BAR + match.group(2)
    return f"bar({name})"


def _has_divisor(node: program.Node) -> bool:
    return any(p is not None for p in node.powers)


def _same_structure(a: Program, b: Program) -> bool:
    """Whether two builds of one expression have the same steps and adjoint terms."""
    if [n.expr for n in a.nodes] != [n.expr for n in b.nodes]:
        return False
    if a.backward_order != b.backward_order or a.output != b.output:
        return False
    return all(
        [(c.source, c.position) for c in a.adjoint_terms.get(i, [])]
        == [(c.source, c.position) for c in b.adjoint_terms.get(i, [])]
        for i in range(len(a.nodes))
    )


def _contribution_rule(source: program.Node, position: int) -> str:
    rule = source.rule
    assert rule is not None
    if rule.reduction:
        return f"reduction: {rule.names[0] if rule.names else rule.signature}"
    if rule.cls is sp.Add:
        return "sum rule"
    if rule.cls is sp.Mul:
        return "quotient rule" if _has_divisor(source) else "product rule"
    if rule.cls is sp.Pow:
        return "power rule" if position == 0 else "exponential rule"
    return f"chain rule ({_function_name(rule)})"


def _function_name(rule: Rule) -> str:
    if rule.names:
        return rule.names[0]
    return rule.signature.split("(")[0] if "(" in rule.signature else rule.name


def _kink_note(prog: Program, node: program.Node, derivation: Derivation) -> str | None:
    """The kink convention of `node`'s function, worded as in `derivation.notes`."""
    rule = node.rule
    if rule is None or rule.kink == SMOOTH:
        return None
    if rule.cls is sp.Pow and prog.nodes[node.args[1]].expr.is_Number:
        return None  # x**2, sqrt(x): no kink convention involved
    if rule.cls in F.MASKS:
        head = f"{to_text(node.expr).strip('()')} is piecewise constant"
    else:
        head = f"{rule.signature}: "
    for note in derivation.notes:
        if note.startswith(head):
            return note
    return f"{rule.signature}: {rule.kink}"


def _backward_steps(
    prog: Program, names: _Names, derivation: Derivation
) -> list[tuple[Step, int]]:
    """The backward steps (without values), each with its node index."""
    consumers: dict[int, list[program.Node]] = {}
    for node in prog.nodes:
        for a in set(node.args):
            consumers.setdefault(a, []).append(node)
    has_adjoint = set(prog.backward_order)

    def upstream(index: int) -> tuple[str, str]:
        return names.adjoint_text[index], names.adjoint_latex[index]

    def step_for(index: int) -> Step:
        node = prog.nodes[index]
        name, name_latex = names.adjoint_text[index], names.adjoint_latex[index]
        if index == prog.output:
            return Step(
                "backward",
                name,
                name_latex,
                "1",
                "1",
                rule=SEED_RULE,
                notes=(SEED_NOTE,),
            )
        texts: list[str] = []
        latexes: list[str] = []
        rules: list[str] = []
        notes: list[str] = []
        given = set()
        for c in prog.adjoint_terms.get(index, []):
            source = prog.nodes[c.source]
            given.add((c.source, c.position))
            up_text, up_latex = upstream(c.source)
            partial = names.show(c.partial)
            if partial == 1:
                text, latex = up_text, up_latex
            else:
                text = f"{up_text}·{_text_factor(partial)}"
                latex = rf"{up_latex} \cdot {_latex_factor(partial)}"
            label = _contribution_rule(source, c.position)
            if node.deps < source.deps and not node.deps:  # scalar, broadcast: sum
                text, latex = f"sum({text})", rf"\sum \left({latex}\right)"
                label += f", summed ({names.text[index]} is a scalar)"
            texts.append(text)
            latexes.append(latex)
            if label not in rules:
                rules.append(label)
            note = _kink_note(prog, source, derivation)
            if note and note not in notes:
                notes.append(note)
        for consumer in consumers.get(index, []):
            if consumer.index not in has_adjoint:
                continue
            for position, a in enumerate(consumer.args):
                if a != index or (consumer.index, position) in given:
                    continue
                note = _kink_note(prog, consumer, derivation)
                if note and note not in notes:
                    notes.append(note)
                label = f"{_function_name(consumer.rule)}: derivative 0"
                if label not in rules:
                    rules.append(label)
        if not texts:
            return Step(
                "backward",
                name,
                name_latex,
                "0",
                "0",
                rule=" + ".join(rules) or "no gradient flows back",
                notes=tuple(notes),
            )
        return Step(
            "backward",
            name,
            name_latex,
            " + ".join(texts),
            " + ".join(latexes),
            rule=" + ".join(rules),
            notes=tuple(notes),
        )

    steps = [(step_for(i), i) for i in prog.backward_order]
    for name in prog.wrt:
        if name not in derivation.wrt:
            continue
        node = prog.input_node(name)
        if node is None or node.index in has_adjoint:
            continue
        steps.append((step_for(node.index), node.index))
    return steps


def _text(expr: sp.Expr) -> str:
    """`to_text`, keeping a comparison's parentheses: (x < y), not x < y."""
    text = to_text(expr)
    if isinstance(expr, sp.Basic) and expr.func in F.MASKS and text[:1] != "(":
        return f"({text})"
    return text


def _text_factor(expr: sp.Expr) -> str:
    """A partial derivative as the right factor of `v̄k·...`, parenthesized if needed."""
    if expr.is_Pow and expr.exp.is_Number and expr.exp < 0:
        return f"(1/{_text_factor(expr.base**-expr.exp)})"
    text = _text(expr)
    simple = expr.is_Atom or isinstance(expr, sp.Function) or expr.is_Pow
    if simple and not text.startswith("-"):
        return text
    return f"({text})"


def _latex_factor(expr: sp.Expr) -> str:
    latex = to_latex(expr)
    if expr.is_Add or expr.could_extract_minus_sign() or latex.startswith("-"):
        return rf"\left({latex}\right)"
    return latex


# --- numbers ------------------------------------------------------------------------
@dataclass
class _Numbers:
    """The values of one run: f, the gradients, and every step's value."""

    value: Any
    gradients: dict[str, Any]
    forward: dict[int, Any]  # node index -> value (the generated code's own)
    adjoints: dict[int, Any]  # node index -> the value of its adjoint
    code_names: dict[int, str]  # node index -> its name in the generated code
    remarks: list[str]


def _numbers(derivation: Derivation, exact: Program, at: Mapping[str, Any]) -> _Numbers:
    """Run the generated module once; read its forward values; evaluate the adjoints.

    f, the gradients and each forward step's value are those of the generated module's
    `value_and_grad`, read off while it runs. The generated code folds the seed and
    inlines adjoints used only once, so an intermediate adjoint may have no variable of
    its own there: each adjoint is computed from those same forward values with the
    generated code's own spelling (`numpy_code`'s emitter and `symgrad.runtime`'s
    helpers), one named line per step of the backward trace.
    """
    captured, value, gradients = _run_generated(derivation, at)
    numbers = _Numbers(value, gradients, {}, {}, {}, [])
    try:
        names, emitter, code_names = _forward_names(exact)
    except _Mismatch:
        numbers.remarks.append(
            "intermediate values are not shown: the generated code's lines could "
            "not be matched to the steps"
        )
        return numbers
    numbers.code_names = code_names
    numbers.forward = {
        i: as_number(captured[name])
        for i, name in code_names.items()
        if name in captured
    }
    try:
        numbers.adjoints = _adjoint_values(exact, names, emitter, captured)
    except Exception as exc:  # noqa: BLE001 - show the trace without these values
        numbers.remarks.append(
            f"intermediate gradients are not shown ({type(exc).__name__}: {exc})"
        )
    return numbers


def _run_generated(
    derivation: Derivation, at: Mapping[str, Any]
) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """Run the generated `value_and_grad` once; its local variables when it returns."""
    module = derivation.traced_module  # compile first, outside the profiled call
    code = module.value_and_grad.__code__
    captured: dict[str, Any] = {}

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            captured.update(frame.f_locals)

    derivation.evaluate(at)  # checks the values (names, shapes) and says what is wrong
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        value, grads = module.value_and_grad(*(at[n] for n in derivation.inputs))
    finally:
        sys.setprofile(previous)
    gradients = dict(zip(derivation.inputs, grads, strict=True))
    return captured, value, gradients


class _Mismatch(Exception):
    """The generated code's forward lines are not those the steps expect."""


def _forward_names(
    exact: Program,
) -> tuple[dict[sp.Expr, str], numpy_code._Emitter, dict[int, str]]:
    """The generated code's name of each forward step (v<k>), by replaying its naming.

    `numpy_code.lower` names the forward steps with its emitter; that naming is
    replayed here and checked line by line against the lowered program.
    """
    try:
        lowered = numpy_code.lower(exact)
        names: dict[sp.Expr, str] = {
            n.var: n.var.name for n in exact.nodes if n.is_input
        }
        emitter = numpy_code._Emitter(names, [], "v")
        code_names: dict[int, str] = {}
        for node in exact.nodes:
            if node.rule is None:
                continue
            code = emitter.spell(node.local)
            emitter.counter += 1
            name = f"v{emitter.counter}"
            emitter.names[node.var] = name
            if node.rule.cls in F.MASKS:
                emitter.mask_vars.add(node.var)
            emitter.lines.append(numpy_code.Line(name, code))
            names.setdefault(node.local, name)
            code_names[node.index] = name
        replayed = [(line.name, line.code) for line in emitter.lines]
        expected = [(line.name, line.code) for line in lowered.forward]
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise _Mismatch from exc
    if replayed != expected:
        raise _Mismatch
    return names, emitter, code_names


def _adjoint_values(
    exact: Program,
    names: dict[sp.Expr, str],
    forward: numpy_code._Emitter,
    captured: Mapping[str, Any],
) -> dict[int, Any]:
    """Each adjoint's value: one named line per backward step, run on `captured`."""
    names = dict(names)
    names[SEED] = "g"
    lines: list[numpy_code.Line] = []
    emitter = numpy_code._Emitter(
        names, lines, "_t", helpers=set(forward.helpers), mask_vars=forward.mask_vars
    )
    adjoints: dict[int, str] = {exact.output: "g"}
    wanted = [i for i in exact.backward_order if i != exact.output]
    wanted += [
        n.index
        for n in exact.nodes
        if n.is_input and n.index != exact.output and exact.has_gradient(n.index)
    ]
    for index in wanted:
        name = f"_a{index}"
        emitter.emit(exact.adjoint(index), name)
        names[exact.adjoint_var[index]] = name
        adjoints[index] = name
    namespace: dict[str, Any] = {"np": np, "math": math}
    helpers = tuple(sorted(emitter.helpers | set(render.ALWAYS_HELPERS)))
    for source in render.helper_sources(helpers):
        exec(source, namespace)  # noqa: S102 - symgrad's own runtime helpers
    for key, value in captured.items():
        if re.fullmatch(r"v\d+", key) or key in exact.inputs:
            namespace[key] = value
    namespace["g"] = 1.0  # the seed: the gradient of sum(value)
    code = "\n".join(f"{line.name} = {line.code}" for line in lines)
    with np.errstate(all="ignore"):
        exec(code, namespace)  # noqa: S102 - code symgrad spelled from its program
    return {i: as_number(namespace[name]) for i, name in adjoints.items()}


def _with_value(step: Step, index: int, trace_numbers: _Numbers, prog: Program) -> Step:
    node = prog.nodes[index]
    if node.is_input and node.var.name in trace_numbers.gradients:
        value = trace_numbers.gradients[node.var.name]  # as the generated code returns
        code_name = f"grad_{node.var.name}"
    elif index in trace_numbers.adjoints:
        value = trace_numbers.adjoints[index]
        code_name = ""
        shape = np.shape(
            trace_numbers.value
            if index == prog.output
            else trace_numbers.forward.get(index, value)
        )
        if np.shape(value) != shape:  # an adjoint has its step's shape
            try:
                value = np.broadcast_to(value, shape).copy()
            except ValueError:
                pass
    else:
        return step
    return replace(step, value=value, code_name=code_name)


# --- formats --------------------------------------------------------------------------
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


def _latex_row(step: Step, with_values: bool, with_rule: bool = True) -> str:
    name = step.name_latex
    if step.alias:
        name = rf"{step.alias} = {name}"
    row = f"{name} &= {step.latex}"
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
    args = ", ".join(_Names.input_latex(n) for n in trace.inputs)
    intro = (
        f"Reverse-mode derivative of $f({args}) = {to_latex(trace.expression)}$, "
        "step by step"
    )
    if with_values:
        where = ", ".join(
            f"{_Names.input_latex(n)} = {value_latex(v)}"
            for n, v in (trace.at or {}).items()
        )
        intro += f", at ${where}$"
    parts = [intro + "."]
    if trace.forward:
        parts.append(
            "**Forward trace.** Each intermediate value is computed once, its "
            "arguments first:"
        )
        parts.append(
            _aligned([_latex_row(s, with_values, False) for s in trace.forward])
        )
    if trace.backward:
        parts.append(
            "**Backward trace.** $\\bar{v}_k$ is the gradient of the sum of the "
            "output with respect to $v_k$. The steps run in reverse order, starting "
            "from the seed $1$; each adjoint sums, over the steps that use it, their "
            "adjoint times the local partial derivative:"
        )
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
    steps = [step.to_dict() for step in trace.steps]
    for note in trace.notes:
        steps.append(
            {
                "phase": "note",
                "name": "",
                "name_latex": "",
                "alias": "",
                "expression": "",
                "latex": "",
                "rule": "",
                "note": note,
                "notes": [note],
                "code_name": "",
                "shape": None,
                "value": None,
            }
        )
    return json.dumps(steps, indent=2, ensure_ascii=False)


__all__ = ["FORMATS", "Step", "Trace", "format_steps", "trace"]
