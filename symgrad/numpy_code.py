"""NumPy code for a reverse program: named lines for the forward and backward traces.

Every forward step becomes one line `v<k> = ...` spelled with the registry's NumPy
template. The backward trace becomes lines `g<k> = ...` (the adjoint of v<k>) and
`t<k> = ...` (the partial derivatives' own subexpressions), emitted once each: identical
subexpressions are shared, and a partial that equals a forward value (exp's partial is
its own output) reuses that value instead of computing it again.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.program import SEED, Program


@dataclass
class Line:
    name: str
    code: str
    comment: str = ""


@dataclass
class NumpyProgram:
    """The pieces a module template lays out."""

    inputs: tuple[str, ...]
    forward: list[Line]
    backward: list[Line]  # with the upstream gradient `g` (grad_output)
    default_backward: list[Line] | None  # grad_output=None: g = 1 folded away
    value: str  # the forward line (or input/literal) holding the value
    gradients: dict[str, str]  # input name -> code of its (unshaped) gradient
    helpers: tuple[str, ...]  # runtime helpers used, without the leading underscore


def literal(expr: sp.Expr) -> str:
    """A constant as Python source."""
    if expr is sp.oo:
        return "np.inf"
    if expr is sp.S.NegativeInfinity:
        return "-np.inf"
    if expr is sp.nan:
        return "np.nan"
    if expr is sp.zoo:  # SymPy's unsigned infinity (from 1/0): float64 gives inf
        return "np.inf"
    if expr.has(sp.I, sp.zoo):  # a complex constant: not a real number
        return "np.nan"
    if expr is sp.pi:
        return "np.pi"
    if expr is sp.E:
        return "np.e"
    if expr.is_Integer:
        return str(int(expr))
    value = float(expr.evalf(30))
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    if math.isnan(value):
        return "np.nan"
    return repr(value)


@dataclass
class _Emitter:
    names: dict[sp.Expr, str]
    lines: list[Line]
    prefix: str
    helpers: set[str] = field(default_factory=set)
    counter: int = 0
    mask_vars: set[sp.Expr] = field(default_factory=set)
    scalar_vars: set[sp.Expr] = field(default_factory=set)
    shapes: dict[sp.Expr, str] = field(default_factory=dict)
    shape_names: dict[str, str] = field(default_factory=dict)

    def is_mask(self, expr: sp.Expr) -> bool:
        """Whether `expr` holds NumPy booleans (a comparison, or a name for one)."""
        return expr.func in F.MASKS or expr in self.mask_vars

    def is_scalar(self, expr: sp.Expr) -> bool:
        """Whether `expr` is one number whatever the inputs' shapes (a reduction's
        result, a constant, or made of those only): multiplied in first, it costs no
        pass over the data."""
        if expr in self.scalar_vars or F.is_literal(expr):
            return True
        if expr.is_Symbol:
            return False
        if expr.func in F.REDUCTIONS:
            return True
        if expr.func is F.unbroadcast:  # a scalar stays one; so does a scalar's share
            return self.is_scalar(expr.args[0]) or self.is_scalar(expr.args[1])
        return all(self.is_scalar(a) for a in expr.args)

    def shape(self, expr: sp.Expr) -> str:
        """Code for the shape of a step's value, from the inputs it depends on: the
        step's array itself need not stay alive until the backward pass asks."""
        code = self.shapes.get(expr) or f"np.shape({self.emit(expr)})"
        if not code.startswith("np.broadcast_shapes"):
            return code
        if code not in self.shape_names:  # name a broadcast shape once: shape1, ...
            self.shape_names[code] = f"shape{len(self.shape_names) + 1}"
            self.lines.append(Line(self.shape_names[code], code))
        return self.shape_names[code]

    def emit(self, expr: sp.Expr, name: str | None = None) -> str:
        """The code for `expr`: a name or a literal; adds lines for what is new."""
        if name is None:
            known = self.names.get(expr)
            if known is not None:
                return known
            if F.is_literal(expr):
                return literal(expr)
        code = self.spell(expr)
        if name is None:
            self.counter += 1
            name = f"{self.prefix}{self.counter}"
        self.lines.append(Line(name, code))
        self.names.setdefault(expr, name)
        return name

    def spell(self, expr: sp.Expr) -> str:
        """One step: the node's operation applied to its arguments' names."""
        if expr.is_Symbol or not expr.args:
            return self.emit(expr) if expr in self.names else literal(expr)
        if not expr.free_symbols:  # a constant computed as PyTorch would: log(-1)
            codes = [
                f"np.float64({literal(a)})" if F.is_literal(a) else self.emit(a)
                for a in expr.args
            ]
            if not isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
                self.helpers.update(registry.rule_for(expr).helpers)
            return _constant_call(expr, codes)
        if isinstance(expr, sp.Add):
            return self._add(expr)
        if isinstance(expr, sp.Mul):
            return self._mul(expr)
        if isinstance(expr, sp.Pow):
            return self._pow(expr)
        if expr.func is F.unbroadcast:
            term = self.emit(expr.args[0])
            target, consumer = (self.shape(a) for a in expr.args[1:])
            self.helpers.add("unbroadcast")
            return f"_unbroadcast({term}, {target}, {consumer})"
        rule = registry.rule_for(expr)
        self.helpers.update(rule.helpers)
        if expr.func is F.sum_ and self.is_mask(expr.args[0]):  # count, no float copy
            return f"np.count_nonzero({self.emit(expr.args[0])})"
        if rule.name == "unbroadcast":  # pragma: no cover - handled above
            raise AssertionError
        codes = [self.emit(a) for a in expr.args]
        if expr.func in (F.where, F.select):  # floats, not an int64 array to cast
            codes = [codes[0]] + [
                literal(sp.Float(a)) if a.is_Integer else c
                for a, c in zip(expr.args[1:], codes[1:], strict=True)
            ]
        if expr.func not in _TAKES_MASKS:  # NumPy's ufuncs want numbers, not booleans
            codes = [
                f"{c} * 1.0" if self.is_mask(a) else c
                for a, c in zip(expr.args, codes, strict=True)
            ]
        if callable(rule.numpy):
            return rule.numpy(*codes)
        if "_" in rule.numpy:
            self.helpers.update(_helper_names(rule.numpy))
        return rule.numpy.format(*codes)

    def _add(self, expr: sp.Expr) -> str:
        parts: list[str] = []
        terms = expr.args  # SymPy's canonical order: deterministic, and no sorting cost
        for term in terms:
            coefficient, rest = term.as_coeff_Mul()
            if coefficient.is_Number and coefficient < 0 and rest is not sp.S.One:
                code = self.emit(-coefficient * rest if coefficient != -1 else rest)
                parts.append(f"- {code}")
            else:
                parts.append(f"+ {self.emit(term)}")
            if self.is_mask(term) or self.is_mask(rest):
                parts[-1] += " * 1"  # NumPy's booleans do not subtract or add up
        # A long sum is added up in lines of CHUNK terms (partial sums named like any
        # other step): one line of 10,000 terms is unreadable and overflows parsers.
        running = ""
        while len(parts) > CHUNK:
            chunk, parts = parts[:CHUNK], parts[CHUNK:]
            self.counter += 1
            name = f"{self.prefix}{self.counter}"
            self.lines.append(Line(name, _join(running, chunk)))
            running = name
        return _join(running, parts)

    def _mul(self, expr: sp.Expr) -> str:
        constants = [f for f in expr.args if F.is_literal(f)]
        factors = [f for f in expr.args if not F.is_literal(f)]
        coefficient = sp.Mul(*constants)  # one literal: 2/sqrt(pi), not 2 / 1.77...
        numerator: list[str] = []
        denominator: list[str] = []
        mask_codes: set[str] = set()
        ordered = factors  # scalars first: each array factor is one pass over the data
        ordered = [f for f in ordered if self.is_scalar(f)] + [
            f for f in ordered if not self.is_scalar(f)
        ]
        for factor in ordered:
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent < 0:
                denominator.append(self.emit(sp.Pow(base, -exponent)))
            else:
                numerator.append(self.emit(factor))
                if self.is_mask(factor):
                    mask_codes.add(numerator[-1])
        if not numerator:
            numerator = [literal(coefficient)]
        elif coefficient == -1:  # NumPy cannot negate booleans: lead with a number
            numbers = [c for c in numerator if c not in mask_codes]
            if numbers:
                numerator.remove(numbers[0])
                numerator.insert(0, "-" + numbers[0])
            else:
                numerator[0] = "-1 * " + numerator[0]
        elif coefficient != 1:
            numerator.insert(0, literal(coefficient))
        text = " * ".join(numerator)
        if denominator:
            text += " / " + (
                denominator[0]
                if len(denominator) == 1
                else "(" + " * ".join(denominator) + ")"
            )
        return text

    def _pow(self, expr: sp.Expr) -> str:
        base, exponent = expr.args
        code = self.emit(base)
        if code.startswith("-"):
            code = f"({code})"
        if exponent == sp.S.Half:
            return f"np.sqrt({code})"
        if exponent == -sp.S.Half:
            return f"1 / np.sqrt({code})"
        if exponent == -1:
            return f"1 / {code}"
        if exponent.is_Number and exponent < 0:
            return f"1 / {code} ** {literal(-exponent)}"
        exp_code = self.emit(exponent)
        if exp_code.startswith("-"):
            exp_code = f"({exp_code})"
        return f"{code} ** {exp_code}"


_TAKES_MASKS = F.MASKS | {F.where, F.select}
CHUNK = 16  # terms per line of a long sum
FOLD_LIMIT = 5000  # steps, above which grad_output=None is not folded into the code


def _join(running: str, parts: list[str]) -> str:
    """`running + a - b ...` from signed parts ('+ a', '- b')."""
    text = " ".join(parts)
    if running:
        return f"{running} {text}"
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _shape_code(deps: frozenset[str], order: dict[str, int]) -> str:
    """The shape of an elementwise step: its inputs' shapes broadcast together."""
    names = sorted(deps, key=order.__getitem__)
    if not names:
        return "()"  # a reduction's result or a constant
    if len(names) == 1:
        return f"np.shape({names[0]})"
    return "np.broadcast_shapes(" + ", ".join(f"np.shape({n})" for n in names) + ")"


def _constant_call(expr: sp.Expr, codes: list[str]) -> str:
    """NumPy code for a constant SymPy could not give a real value (log(-1), 1/0)."""
    if isinstance(expr, sp.Pow):
        return f"np.power({codes[0]}, {codes[1]})"
    if isinstance(expr, sp.Mul):
        return " * ".join(codes)
    if isinstance(expr, sp.Add):
        return " + ".join(codes)
    rule = registry.rule_for(expr)
    return rule.numpy(*codes) if callable(rule.numpy) else rule.numpy.format(*codes)


def _helper_names(template: str) -> set[str]:
    import re

    return set(re.findall(r"(?<![\w.])_([a-z][a-z0-9_]*)\(", template))


def lower(program: Program) -> NumpyProgram:
    """Forward and backward lines for `program` (built with exact rules)."""
    names: dict[sp.Expr, str] = {}
    for node in program.nodes:
        if node.is_input:
            names[node.var] = node.var.name
    forward: list[Line] = []
    fwd = _Emitter(names, forward, "v")
    order = {name: i for i, name in enumerate(program.inputs)}
    value = ""
    for node in program.nodes:
        if node.rule is None:
            if node.index == program.output:
                value = names.get(node.var) or literal(node.expr)
            continue
        code = fwd.spell(node.local)  # may add lines for y**2 in x / y**2 first
        fwd.counter += 1
        name = f"v{fwd.counter}"
        fwd.names[node.var] = name
        if node.rule.cls in F.MASKS:
            fwd.mask_vars.add(node.var)
        if not node.deps:
            fwd.scalar_vars.add(node.var)
        fwd.shapes[node.var] = _shape_code(node.deps, order)
        forward.append(Line(name, code, ""))
        names.setdefault(node.local, name)
        if node.index == program.output:
            value = name

    backward, gradients = _backward(program, names, fwd, seed=None)
    if len(program.nodes) <= FOLD_LIMIT:
        default, _ = _backward(program, names, fwd, seed=sp.S.One)
    else:  # a very large program: one backward pass for both (generating it twice
        # would double the time to generate, and the file, for a small gain per call)
        default = None
    return NumpyProgram(
        inputs=program.inputs,
        forward=forward,
        backward=backward,
        default_backward=default,
        value=value,
        gradients=gradients,
        helpers=tuple(sorted(fwd.helpers)),
    )


def _backward(
    program: Program, names: dict[sp.Expr, str], fwd: _Emitter, seed: sp.Expr | None
) -> tuple[list[Line], dict[str, str]]:
    """Backward lines, and the code of each input's gradient.

    `seed` None: the upstream gradient is the variable `g`; else that constant (1 for
    the gradient of sum(value)), folded into the formulas. An adjoint used by a single
    step is substituted into that step rather than named: fewer passes over the data.
    """
    names = dict(names)
    lines: list[Line] = []
    emitter = _Emitter(
        names,
        lines,
        "t",
        helpers=fwd.helpers,
        mask_vars=fwd.mask_vars,
        scalar_vars=set(fwd.scalar_vars),
        shapes=fwd.shapes,
    )
    inline: dict[sp.Expr, sp.Expr] = {}
    if seed is None:
        names[SEED] = "g"
    else:
        inline[SEED] = seed
    uses = Counter(c.source for terms in program.adjoint_terms.values() for c in terms)
    for index in program.backward_order:
        if index == program.output:
            continue
        adjoint = program.adjoint(index).xreplace(inline)
        symbol = program.adjoint_var[index]
        if uses[index] <= 1 or adjoint.is_Symbol or F.is_literal(adjoint):
            inline[symbol] = adjoint
            continue
        names[symbol] = emitter.emit(adjoint, "g" + names[program.nodes[index].var][1:])
    gradients: dict[str, str] = {}
    for name in program.wrt:
        node = program.input_node(name)
        if node is None or not program.has_gradient(node.index):
            gradients[name] = "0.0"
            continue
        adjoint = program.adjoint(node.index).xreplace(inline)
        gradients[name] = emitter.emit(adjoint, f"grad_{name}")
    return lines, gradients
