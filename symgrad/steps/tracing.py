"""The steps of a derivation's reverse program (`trace`).

Contract:

- `trace(derivation, at=None)` reads THE program: `derivation.program`, the graph the
  generated NumPy code, `--at`, plot and check compute. It is never a second
  derivation: each forward step is a node of `program.forward_nodes`, each backward
  step the adjoint of a node of `program.default_backward.order`, each term of it one
  `Contribution` of that program.
- Forward trace: the nodes of `program.forward_nodes` in order, named v1, v2, ... (u1,
  w1, ... if the inputs use v<k>); the output is also called `f`. Inputs and constants
  are not steps (constants are written inline); neither is the inputs' `dtype` node,
  nor a `float` cast of a mask used as a number: the cast goes by its mask's name (vk
  is `x > 0`, used as 0/1), its adjoint is v̄k. Each step is its registry row's SymPy
  form (`Rule.to_sympy`) of its arguments' names; the rule column is the row's name.
- Backward trace (seed 1: v̄k is the gradient of sum(f) with respect to vk, as
  `f(x).sum().backward()`): v̄k is the sum of its contributions, each written
  (consumer's adjoint)·(readable local partial), the partial being the registry's
  `Rule.readable_partials` of the consumer's argument names (equal to the exact rule
  the program runs, off the kinks). Each term names its rule: sum rule, difference,
  negation, product rule, quotient rule, power rule, exponential rule, chain rule (fn),
  reduction: fn, where branch; a function that is not smooth adds its kink convention
  (`Rule.kink`, worded as in `derivation.notes`); an argument a consumer sends nothing
  (a derivative that is 0, e.g. a comparison's) is named `fn: derivative 0`. A term
  summed back to a scalar (a reduction's result used elementwise) is written
  sum(...); other broadcasting is not shown (formulas take the inputs to have one
  shape). Inside a branch of `where(c, a, b)` a term is written where(c, term, 0):
  the branch not taken sends nothing, where PyTorch and JAX give nan when that
  branch's derivative is not finite.
- Result: f and each df/dx, the simplified `derivation.derivatives`.
- With `at`, each step carries its value (`symgrad.steps.numbers`): forward steps the
  node's value, backward steps the adjoint node's, inputs' x̄ and df/dx the gradient
  `Derivation.evaluate` returns; all from the one evaluator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from symgrad import functions as F
from symgrad import numpy_code, registry
from symgrad.derivation import Derivation
from symgrad.errors import SymgradError
from symgrad.graph import MASK_OPS, Node, walk_consumers
from symgrad.parse import symbol, to_sympy
from symgrad.printing import to_latex, to_text
from symgrad.registry import SMOOTH, Rule
from symgrad.reverse import Contribution, Program
from symgrad.steps.numbers import Numbers, evaluate_steps
from symgrad.values import as_number, jsonable

BAR = "\u0304"  # combining macron: v̄
SEED_RULE = "seed"
SEED_NOTE = "the gradient of the sum of the output, as f(x).sum().backward() starts"
WHERE_NOTE = (
    "where: the branch not taken sends nothing into the gradient (PyTorch and JAX "
    "give nan there when that branch's derivative is not finite)"
)
_HIDDEN = ("input", "const", "dtype", "float")  # forward nodes that are not steps
_TERM = sp.Symbol("TERM")  # stands for a term inside where(gate, term, 0)


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
    code_name: str = ""  # the value's name in the generated code (_v1, grad_x)

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
    program: Program = field(repr=False)  # the program shown: `derivation.program`
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
    mode: str = "reverse"  # "forward": `backward` holds the tangent steps
    tangents: dict[str, Any] | None = None  # forward mode: the inputs' tangents

    @property
    def steps(self) -> list[Step]:
        """Every step, in reading order."""
        return [*self.input_steps, *self.forward, *self.backward, *self.results]

    def format(self, fmt: str = "text") -> str:
        """The steps as "text", "latex", "markdown" or "json" (`format_steps`)."""
        from symgrad.steps.formats import format_steps

        return format_steps(self, fmt)

    def __str__(self) -> str:
        return self.format("text")

    def _repr_markdown_(self) -> str:
        return self.format("markdown")


# --- building the trace ---------------------------------------------------------------
def trace(
    derivation: Derivation,
    at: Mapping[str, Any] | None = None,
    *,
    mode: str = "reverse",
    tangents: Mapping[str, Any] | None = None,
) -> Trace:
    """The steps of `derivation.program`, evaluated `at` if given.

    `mode` "forward" traces forward mode instead of the backward pass: each step's
    tangent (its dual part), v̇k = the sum over its arguments of the local partial
    times the argument's tangent, for the inputs' tangents ẋ (`tangents`; by default
    1 for the first input of wrt and 0 for the others, so that ḟ is df/dx).

    Raises `SymgradError` where `Derivation.evaluate` does (missing or extra input
    values, shapes that do not broadcast).
    """
    if mode not in ("reverse", "forward"):
        raise SymgradError(f"unknown mode {mode!r}: use reverse or forward")
    prog = derivation.program
    names = _Names(prog)
    numbers = None if at is None else evaluate_steps(derivation, at)
    code = numpy_code.names(prog)
    output = prog.output

    input_steps = [
        Step(
            "input",
            name,
            input_latex(name),
            "input",
            r"\text{input}",
            rule="input",
            value=None if numbers is None else as_number(numbers.at[name]),
            alias="f" if node is output else "",
            code_name=name,
        )
        for name, node in prog.input_nodes.items()
    ]

    forward = [
        Step(
            "forward",
            names.text[node.id],
            names.latex[node.id],
            _text(names.local[node.id]),
            to_latex(names.local[node.id]),
            rule=node.op,
            value=None if numbers is None else numbers.forward(node),
            alias="f" if node is output else "",
            code_name=code.get(node.id, ""),
        )
        for node in names.steps
    ]
    if output.is_const:  # a constant expression
        forward.append(
            Step(
                "forward",
                "f",
                "f",
                to_text(derivation.expression),
                to_latex(derivation.expression),
                rule="constant",
                value=None if numbers is None else numbers.value,
            )
        )

    seeds: dict[str, Any] = {}
    if mode == "forward":
        seeds = _tangent_seeds(derivation, tangents)
        backward = _tangent_steps(prog, names, derivation, at, seeds)
    else:
        backward = _backward_steps(prog, names, derivation, numbers, code)
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
            value=None if numbers is None else numbers.value,
        )
    ]
    if mode == "forward":
        results.append(_tangent_result(derivation, backward, seeds, at is not None))
    for name, d in derivation.derivatives.items():
        if mode == "forward":
            break
        results.append(
            Step(
                "result",
                f"df/d{name}",
                rf"\frac{{\partial f}}{{\partial {input_latex(name)}}}",
                to_text(d),
                to_latex(d),
                rule="simplified",
                value=None if numbers is None else numbers.gradients[name],
                code_name="" if numbers is None else f"grad_{name}",
            )
        )
    return Trace(
        expression=derivation.expression,
        inputs=derivation.inputs,
        wrt=derivation.wrt,
        convention=derivation.convention,
        program=prog,
        input_steps=input_steps,
        forward=forward,
        backward=backward,
        results=results,
        derivatives=dict(derivation.derivatives),
        notes=notes,
        at=None if numbers is None else numbers.at,
        value=None if numbers is None else numbers.value,
        gradients=None if numbers is None else numbers.gradients,
        mode=mode,
        tangents=seeds if mode == "forward" else None,
    )


def input_latex(name: str, bar: bool = False) -> str:
    """An input's name in LaTeX, or its adjoint's (x̄: ``\\bar{x}``)."""
    if not bar:
        return to_latex(symbol(name))
    match = re.fullmatch(r"([A-Za-z])_?(\d*)", name)
    if match:
        letter, digits = match.groups()
        return rf"\bar{{{letter}}}" + (f"_{{{digits}}}" if digits else "")
    return rf"\overline{{{to_latex(symbol(name))}}}"


def _bar_text(name: str) -> str:
    match = re.fullmatch(r"([A-Za-z])(_?\d*)", name)
    if match:
        return match.group(1) + BAR + match.group(2)
    return f"bar({name})"


class _Names:
    """Display names and SymPy symbols: inputs, constants, v1, v2, ...; v̄k, x̄."""

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
        self.symbol: dict[int, sp.Expr] = {}  # each forward node as a step's argument
        self.local: dict[int, sp.Expr] = {}  # each step in its arguments' names
        self.text: dict[int, str] = {}
        self.latex: dict[int, str] = {}
        self.adjoint_text: dict[int, str] = {}
        self.adjoint_latex: dict[int, str] = {}
        self.steps: list[Node] = []
        for node in prog.forward_nodes:
            if node.is_input:
                name = node.name or ""
                self.symbol[node.id] = symbol(name)
                self.text[node.id] = name
                self.latex[node.id] = input_latex(name)
                self.adjoint_text[node.id] = _bar_text(name)
                self.adjoint_latex[node.id] = input_latex(name, bar=True)
            elif node.is_const or node.op == "dtype":
                self.symbol[node.id] = to_sympy(node) if node.is_const else sp.S.One
            elif node.op == "float":  # a mask used as a number: the mask's name
                mask = node.args[0]
                for table in (self.symbol, self.text, self.latex):
                    table[node.id] = table[mask.id]
                self.adjoint_text[node.id] = self.adjoint_text[mask.id]
                self.adjoint_latex[node.id] = self.adjoint_latex[mask.id]
            else:
                self.steps.append(node)
                k = len(self.steps)
                self.local[node.id] = _local_form(node.rule, self.args(node))
                self.symbol[node.id] = sp.Symbol(f"{prefix}{k}", real=True)
                self.text[node.id] = f"{prefix}{k}"
                self.latex[node.id] = to_latex(self.symbol[node.id])
                self.adjoint_text[node.id] = f"{prefix}{BAR}{k}"
                self.adjoint_latex[node.id] = rf"\bar{{{prefix}}}_{{{k}}}"

    def args(self, node: Node) -> list[sp.Expr]:
        return [self.symbol[a.id] for a in node.args]

    def show(self, node: Node) -> sp.Expr:
        """Any node (a gate built by the backward pass, say) in display names."""
        if node.id in self.symbol:
            return self.symbol[node.id]
        assert node.rule is not None
        return node.rule.to_sympy(*(self.show(a) for a in node.args))


def _local_form(rule: Rule | None, args: list[sp.Expr]) -> sp.Expr:
    """`rule` of `args` as SymPy, unevaluated where SymPy would merge or cancel
    arguments (x*x stays x*x, x/x stays x/x)."""
    assert rule is not None
    symbolic = [a for a in args if not a.is_Number]
    try:
        expr = rule.to_sympy(*args)
        merged = len(set(symbolic)) < len(symbolic)
        if not merged and expr.free_symbols >= set().union(
            *(a.free_symbols for a in symbolic)
        ):
            return expr
        with sp.evaluate(False):
            return rule.to_sympy(*args)
    except (ArithmeticError, ValueError, TypeError):
        if rule.cls is not None:
            return rule.cls(*args, evaluate=False)
        return sp.Function(rule.name)(*args)


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


def _readable(expr: sp.Expr) -> sp.Expr:
    """A registry partial for a reader: safe_recip(a) as 1/a."""
    return expr.replace(F.safe_recip, lambda a: 1 / a)


# --- the backward trace ---------------------------------------------------------------
def _function_name(rule: Rule) -> str:
    if rule.names:
        return rule.names[0]
    return rule.signature.split("(")[0] if "(" in rule.signature else rule.name


def _contribution_rule(source: Node, position: int) -> str:
    rule = source.rule
    assert rule is not None
    if rule.reduction:
        return f"reduction: {_function_name(rule)}"
    if source.op in ("slice", "index"):
        return "indexing (linear)"
    named = {
        "add": "sum rule",
        "sub": "difference",
        "neg": "negation",
        "mul": "product rule",
        "div": "quotient rule",
        "where": "where branch",
    }
    if source.op in named:
        return named[source.op]
    if source.op == "pow":
        return "power rule" if position == 0 else "exponential rule"
    return f"chain rule ({_function_name(rule)})"


def _kink_note(node: Node, derivation: Derivation) -> str | None:
    """The kink convention of `node`'s function, worded as in `derivation.notes`."""
    rule = node.rule
    if rule is None or rule.kink == SMOOTH:
        return None
    if node.op == "pow" and node.args[1].is_const:
        return None  # x**2: no kink convention involved
    if node.op in MASK_OPS:
        head = f"{to_text(to_sympy(node)).strip('()')} is piecewise constant"
    else:
        head = f"{rule.signature}: "
    for note in derivation.notes:
        if note.startswith(head):
            return note
    return f"{rule.signature}: {rule.kink}"


def _scalar_nodes(prog: Program) -> set[int]:
    """Forward nodes that depend on no input elementwise (reductions' results)."""
    scalar: set[int] = set()
    for node in prog.forward_nodes:
        if node.is_input:
            continue
        if node.is_const or (node.rule and node.rule.reduction):
            scalar.add(node.id)
        elif all(a.id in scalar for a in node.args):
            scalar.add(node.id)
    return scalar


def _backward_steps(
    prog: Program,
    names: _Names,
    derivation: Derivation,
    numbers: Numbers | None,
    code: dict[int, str],
) -> list[Step]:
    """The adjoint of each node of `default_backward.order`, then zero gradients."""
    backward = prog.default_backward
    consumers = walk_consumers(prog.forward_nodes)
    scalar = _scalar_nodes(prog)
    # nodes whose adjoint is computed (a mask counts if its cast to a number does)
    alive = {n.id for n in backward.order}
    alive |= {n.args[0].id for n in backward.order if n.op == "float"}

    def term(c: Contribution) -> tuple[str, str, str, list[str]]:
        """One contribution as text and LaTeX, its rule and its notes."""
        source = c.source
        assert source.rule is not None
        partials = source.rule.readable_partials(
            names.args(source), names.symbol[source.id], prog.convention
        )
        partial = _readable(sp.sympify(partials[c.position]))
        up_text = names.adjoint_text[source.id]
        up_latex = names.adjoint_latex[source.id]
        if partial.has(registry.UPSTREAM):  # moved, not multiplied (a slice's)
            text = to_text(partial).replace(str(registry.UPSTREAM), up_text)
            latex = to_latex(partial).replace(to_latex(registry.UPSTREAM), up_latex)
        elif partial == 1:
            text, latex = up_text, up_latex
        else:
            text = f"{up_text}·{_text_factor(partial)}"
            latex = rf"{up_latex} \cdot {_latex_factor(partial)}"
        label = _contribution_rule(source, c.position)
        notes = [n for n in (_kink_note(source, derivation),) if n]
        if source.op == "where":
            notes.append(WHERE_NOTE)
        gate = backward.gates.get(source.id)
        if gate is not None:  # inside a where branch: the branch taken only
            shown = F.where(names.show(gate), _TERM, 0)
            text = to_text(shown).replace(to_text(_TERM), text)
            latex = to_latex(shown).replace(to_latex(_TERM), latex)
            label += ", where branch"
            notes.append(WHERE_NOTE)
        if c.term.op == "unbroadcast" and c.target.id in scalar:
            text, latex = f"sum({text})", rf"\sum \left({latex}\right)"
            label += f", summed ({names.text[c.target.id]} is a scalar)"
        return text, latex, label, notes

    def step_for(node: Node) -> Step:
        name, name_latex = names.adjoint_text[node.id], names.adjoint_latex[node.id]
        adjoint = backward.adjoints.get(node.id)
        value = None if numbers is None else numbers.adjoint(node, adjoint)
        if node.is_input and numbers is not None and node.name in numbers.gradients:
            code_name = f"grad_{node.name}"
        else:
            code_name = "" if adjoint is None else code.get(adjoint.id, "")
        if node is prog.output:
            return Step(
                "backward",
                name,
                name_latex,
                "1",
                "1",
                rule=SEED_RULE,
                notes=(SEED_NOTE,),
                value=value,
                code_name=code_name,
            )
        texts: list[str] = []
        latexes: list[str] = []
        rules: list[str] = []
        notes: list[str] = []
        given: set[tuple[int, int]] = set()
        for c in backward.terms.get(node.id, []):
            given.add((c.source.id, c.position))
            text, latex, label, term_notes = term(c)
            texts.append(text)
            latexes.append(latex)
            rules += [label] if label not in rules else []
            notes += [n for n in term_notes if n not in notes]
        for consumer in consumers.get(node.id, []):
            if consumer.id not in alive or consumer.op in ("float", "dtype"):
                continue
            for position, a in enumerate(consumer.args):
                if a is not node or (consumer.id, position) in given:
                    continue
                assert consumer.rule is not None
                label = f"{_function_name(consumer.rule)}: derivative 0"
                rules += [label] if label not in rules else []
                note = _kink_note(consumer, derivation)
                notes += [note] if note and note not in notes else []
        return Step(
            "backward",
            name,
            name_latex,
            " + ".join(texts) or "0",
            " + ".join(latexes) or "0",
            rule=" + ".join(rules) or "no gradient flows back",
            notes=tuple(notes),
            value=value,
            code_name=code_name,
        )

    steps = [step_for(node) for node in backward.order]
    for name in derivation.wrt:  # inputs no gradient reaches: 0, and why
        node = prog.input_nodes[name]
        if node.id not in backward.adjoints:
            steps.append(step_for(node))
    return steps


__all__ = ["Step", "Trace", "input_latex", "trace"]


# --- the tangent trace (forward mode) -------------------------------------------------
DOT = "\u0307"  # combining dot above: v̇1, ẋ


def _dot_text(name: str) -> str:
    return name[:1] + DOT + name[1:] if name else name


def _dot_latex(latex: str) -> str:
    match = re.fullmatch(r"([A-Za-z])_\{(\d+)\}", latex)
    if match:
        return rf"\dot{{{match.group(1)}}}_{{{match.group(2)}}}"
    return rf"\dot{{{latex}}}"


def _tangent_seeds(
    derivation: Derivation, tangents: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The inputs' tangents: as given, else 1 for the first of wrt, 0 for the rest."""
    wrt = derivation.wrt
    if tangents is None:
        return {n: (1.0 if i == 0 else 0.0) for i, n in enumerate(wrt)}
    unknown = [n for n in tangents if n not in wrt]
    if unknown:
        raise SymgradError(
            f"--tangent gives {', '.join(unknown)}, which is not an input of wrt "
            f"({', '.join(wrt)})"
        )
    return {n: tangents.get(n, 0.0) for n in wrt}


def _tangent_steps(
    prog: Program,
    names: _Names,
    derivation: Derivation,
    at: Mapping[str, Any] | None,
    seeds: Mapping[str, Any],
) -> list[Step]:
    """One step per forward step: its tangent in its arguments' tangents, the rule
    of each term, and (with `at`) the value the evaluator gives the tangent node."""
    dot_symbol: dict[int, sp.Expr] = {}
    dot_text: dict[int, str] = {}
    dot_latex: dict[int, str] = {}
    # LaTeX: each tangent is a placeholder symbol, replaced by \dot{v}_{k} after
    placeholders: dict[str, str] = {}

    def latex_of(expr: sp.Expr) -> str:
        latex = to_latex(expr)
        for key in sorted(placeholders, key=len, reverse=True):
            latex = latex.replace(key, placeholders[key])
        return latex

    def name_tangent(node: Node, text: str, latex: str) -> None:
        dot_symbol[node.id] = sp.Symbol(f"tangentplaceholder{node.id}", real=True)
        placeholders[to_latex(dot_symbol[node.id])] = latex
        dot_text[node.id] = text
        dot_latex[node.id] = latex

    def text_of(expr: sp.Expr) -> str:
        text = _text(expr)
        for node_id, symbol_ in dot_symbol.items():
            text = re.sub(rf"\b{symbol_}\b", dot_text[node_id], text)
        return text

    for name, node in prog.input_nodes.items():
        if name in seeds:
            name_tangent(node, _dot_text(name), _dot_latex(input_latex(name)))
    values: dict[int, Any] = {}
    if at is not None:
        from symgrad import evaluate
        from symgrad.graph import ancestors

        bound = prog.bindings(at, tangents=seeds)
        wanted = [prog.output, *prog.forward_tangents.values()]
        values = evaluate.run(ancestors(wanted), bound)
    steps: list[Step] = []
    for node in names.steps:
        rule = node.rule
        assert rule is not None
        terms: list[sp.Expr] = []
        labels: list[str] = []
        partials = rule.readable_partials(
            names.args(node), names.symbol[node.id], prog.convention
        )
        for position, arg in enumerate(node.args):
            source = arg.args[0] if arg.op == "float" else arg
            if source.id not in dot_symbol or arg.is_mask or arg.op == "float":
                continue
            partial = _readable(sp.sympify(partials[position]))
            if partial == 0:
                continue
            dot = dot_symbol[source.id]
            if partial.has(registry.UPSTREAM):  # a slice: the slice of the tangent
                term = rule.to_sympy(dot, *names.args(node)[1:])
            elif rule.reduction:
                term = F.sum_(partial * dot) if partial != 1 else F.sum_(dot)
            else:
                term = partial * dot
            terms.append(term)
            labels.append(_contribution_rule(node, position))
        if not terms:
            continue
        name_tangent(
            node, _dot_text(names.text[node.id]), _dot_latex(names.latex[node.id])
        )
        expr = sp.Add(*terms)
        notes = [n for n in (_kink_note(node, derivation),) if n]
        if node.op == "where":
            notes.append(WHERE_NOTE)
        tangent_node = prog.forward_tangents.get(node.id)
        value = None
        if at is not None:
            value = 0.0 if tangent_node is None else as_number(values[tangent_node.id])
        steps.append(
            Step(
                "tangent",
                dot_text[node.id],
                dot_latex[node.id],
                text_of(expr),
                latex_of(expr),
                rule=" + ".join(dict.fromkeys(labels)),
                notes=tuple(notes),
                value=value,
                alias="ḟ" if node is prog.output else "",
            )
        )
    return steps


def _tangent_result(
    derivation: Derivation, steps: list[Step], seeds: Mapping[str, Any], at: bool
) -> Step:
    """ḟ: the output's tangent, the derivative along the inputs' tangents, with the
    simplified derivatives (where shown) as its formula."""
    names = list(seeds)
    if derivation.derivatives and all(n in derivation.derivatives for n in names):
        dots = [
            sp.Symbol(f"tangentplaceholder_{i}", real=True) for i in range(len(names))
        ]
        expr = sp.Add(
            *(derivation.derivatives[n] * d for n, d in zip(names, dots, strict=True))
        )
        text, latex = to_text(expr), to_latex(expr)
        for i, n in enumerate(names):
            text = re.sub(rf"\b{dots[i]}\b", _dot_text(n), text)
            latex = latex.replace(to_latex(dots[i]), _dot_latex(input_latex(n)))
    else:
        text = " + ".join(f"df/d{n}·{_dot_text(n)}" for n in names) or "0"
        latex = (
            " + ".join(
                rf"\frac{{\partial f}}{{\partial {input_latex(n)}}} "
                + _dot_latex(input_latex(n))
                for n in names
            )
            or "0"
        )
    last = next((s for s in steps if s.alias), None)
    return Step(
        "result",
        "ḟ",
        r"\dot{f}",
        text,
        latex,
        rule="directional derivative",
        value=(last.value if last is not None else 0.0) if at else None,
    )
