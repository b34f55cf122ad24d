"""Formulas for readers: the gradient of a SymPy expression, assembled for display.

This builds a forward trace of the SymPy form of an expression and its adjoint trace
with the registry's readable partials, then substitutes them back into one formula
per input (`gradient_expressions`): what `symgrad derive` prints and the generated
module's docstring shows. It never decides a number: values, steps and generated code
come from the expression graph as written (`symgrad.graph`, `symgrad.reverse`,
`symgrad.evaluate`).

Shapes: inputs may be arrays that broadcast against each other. Each node records which
inputs it depends on elementwise (a reduction's result is a scalar and depends on none).
Where an argument depends on fewer inputs than its consumer, the contribution to its
adjoint is summed back to its shape (`unbroadcast`); in displayed formulas, where all
inputs are taken to have one shape, that is a `sum(...)` only when the argument is a
scalar (a reduction's result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.registry import Rule

SEED = sp.Symbol("_G", real=True)  # the adjoint of the output (grad_output)


@dataclass
class Node:
    """One step of the forward trace."""

    index: int
    expr: sp.Expr  # the subexpression, in terms of the inputs
    var: sp.Expr  # its name in the program: the input symbol, or _v<index>
    rule: Rule | None  # None for inputs and constants
    args: tuple[int, ...] = ()
    deps: frozenset[str] = frozenset()  # inputs it depends on elementwise
    needs_grad: bool = False  # some input of interest flows into it
    is_input: bool = False
    is_constant: bool = False

    # For products: the exponent of a divisor inlined into the product (x / y is one
    # step with arguments x and y, not a product with a separate 1/y), else None.
    powers: tuple[sp.Expr | None, ...] = ()

    def factors(self, nodes: list[Node]) -> list[sp.Expr]:
        """The arguments as the operation sees them (y**-1 for an inlined divisor)."""
        powers = self.powers or (None,) * len(self.args)
        return [
            nodes[a].var if p is None else nodes[a].var ** p
            for a, p in zip(self.args, powers, strict=True)
        ]

    @property
    def local(self) -> sp.Expr:
        """The step in terms of its arguments' names (v3 = sin(v2))."""
        return self.expr if self.rule is None else self._local

    _local: sp.Expr = field(default=sp.S.Zero, repr=False)


@dataclass
class Contribution:
    """One term of an adjoint: `source`'s adjoint times d source / d target."""

    source: int  # the consumer node
    position: int  # which argument of the consumer
    partial: sp.Expr  # local partial derivative, in program names
    term: sp.Expr  # adjoint(source) * partial, summed back to the target's shape


@dataclass
class Program:
    """Forward trace, backward trace and what they were built for."""

    expr: sp.Expr
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    convention: str
    nodes: list[Node]
    output: int
    adjoint_var: dict[int, sp.Symbol]  # node index -> _g<index>
    adjoint_terms: dict[int, list[Contribution]]
    backward_order: list[int]  # nodes whose adjoint is defined, consumers first

    def adjoint(self, index: int) -> sp.Expr:
        """The adjoint of node `index` as a sum of terms (program names)."""
        if index == self.output:
            return SEED
        return sp.Add(*(c.term for c in self.adjoint_terms.get(index, [])))

    def has_gradient(self, index: int) -> bool:
        """Whether anything flows back into node `index`."""
        if index == self.output:
            return self.nodes[index].needs_grad
        return bool(self.adjoint_terms.get(index))

    def input_node(self, name: str) -> Node | None:
        """The node of input `name` (inputs are the first nodes, in argument order)."""
        try:
            index = (
                self.inputs.index(name)
                if len(self.inputs) < 64
                else (self._input_index[name])
            )
        except (ValueError, KeyError):
            return None
        return self.nodes[index]

    @cached_property
    def _input_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.inputs)}

    def rules_used(self) -> list[Rule]:
        seen: dict[str, Rule] = {}
        for node in self.nodes:
            if node.rule is not None:
                seen.setdefault(node.rule.name, node.rule)
        return list(seen.values())


def var_symbol(index: int) -> sp.Symbol:
    return sp.Symbol(f"_v{index}", real=True)


def _operands(e: sp.Expr) -> list[tuple[sp.Expr, sp.Expr | None]]:
    """A node's operands; a product's divisors (y**-1, y**-2) count as y, inlined."""
    if isinstance(e, sp.Mul):
        return [
            (a.base, a.exp)
            if a.is_Pow
            and a.exp.is_Number
            and a.exp < 0
            and not F.is_literal(a)
            and not a.base.is_Number  # 1/0 is its own step
            else (a, None)
            for a in e.args
        ]
    return [(a, None) for a in e.args]


def adjoint_symbol(index: int) -> sp.Symbol:
    return sp.Symbol(f"_g{index}", real=True)


def build(
    expr: sp.Expr,
    inputs: tuple[str, ...],
    wrt: tuple[str, ...] | None = None,
    convention: str = "torch",
) -> Program:
    """Build the forward and backward traces of `expr`, with the registry's display
    forms of the partials (formulas for a reader; numbers come from symgrad.reverse).
    """
    if convention not in ("torch", "jax"):
        raise ValueError(f"unknown convention {convention!r}: use 'torch' or 'jax'")
    wrt = tuple(inputs if wrt is None else wrt)
    nodes: list[Node] = []
    index_of: dict[sp.Expr, int] = {}

    def add_node(e: sp.Expr, **kwargs: object) -> int:
        node = Node(index=len(nodes), expr=e, **kwargs)  # type: ignore[arg-type]
        nodes.append(node)
        index_of[e] = node.index
        return node.index

    # Inputs first, in argument order, so that their names are stable.
    for name in inputs:
        sym = sp.Symbol(name, real=True)
        add_node(
            sym,
            var=sym,
            rule=None,
            deps=frozenset({name}),
            needs_grad=name in wrt,
            is_input=True,
        )

    # Forward trace: iterative post-order walk (expressions can be deep).
    stack: list[tuple[sp.Expr, bool]] = [(expr, False)]
    while stack:
        e, expanded = stack.pop()
        if e in index_of:
            continue
        if e.is_Symbol:
            raise ValueError(f"input '{e}' is not among the inputs {list(inputs)}")
        if e.is_Atom:  # numbers, pi, e, inf
            add_node(e, var=e, rule=None, is_constant=True)
            continue
        operands = _operands(e)
        if not expanded:
            stack.append((e, True))
            stack.extend((a, False) for a, _ in reversed(operands) if a not in index_of)
            continue
        args = tuple(index_of[a] for a, _ in operands)
        if all(nodes[a].is_constant for a in args) and F.is_literal(e):
            # log(2), sqrt(pi): a number
            add_node(e, var=e, rule=None, is_constant=True)
            continue
        rule = registry.rule_for(e)
        if rule.reduction:
            deps: frozenset[str] = frozenset()
        else:
            deps = frozenset().union(*(nodes[a].deps for a in args))
        needs = any(nodes[a].needs_grad for a in args)
        i = add_node(
            e, var=sp.S.Zero, rule=rule, args=args, deps=deps, needs_grad=needs
        )
        node = nodes[i]
        node.var = var_symbol(i)
        node.powers = tuple(p for _, p in operands)
        node._local = e.func(*node.factors(nodes), evaluate=False)
    output = index_of[expr]

    # Backward trace.
    adjoint_var: dict[int, sp.Symbol] = {output: SEED}
    terms: dict[int, list[Contribution]] = {}
    order: list[int] = []
    for node in reversed(nodes):
        if node.rule is None or not node.needs_grad:
            continue
        if node.index != output and not terms.get(node.index):
            continue
        if node.index != output:
            adjoint_var[node.index] = adjoint_symbol(node.index)
        order.append(node.index)
        arg_vars = node.factors(nodes)
        if node.rule.cls is sp.Mul:  # the product rule, built only where it is needed
            partials = tuple(
                sp.Mul(*(arg_vars[:i] + arg_vars[i + 1 :]))
                if nodes[a].needs_grad
                else sp.S.Zero
                for i, a in enumerate(node.args)
            )
        else:
            partials = node.rule.readable_partials(arg_vars, node.var, convention)
        partials = tuple(  # through a divisor inlined into a product: d(b**e)/db
            p if power is None else p * power * nodes[a].var ** (power - 1)
            for p, a, power in zip(partials, node.args, node.powers, strict=True)
        )
        upstream = adjoint_var[node.index]
        for position, (a, partial) in enumerate(zip(node.args, partials, strict=True)):
            target = nodes[a]
            if not target.needs_grad or partial == 0:
                continue
            if partial.has(registry.UPSTREAM):  # moved, not multiplied (a slice's)
                term = partial.subs(registry.UPSTREAM, upstream)
            elif partial == 1:
                term = upstream
            else:
                term = upstream * partial
            if target.deps < node.deps:  # the argument was broadcast: sum back
                term = F.unbroadcast(term, target.var, node.var)
            terms.setdefault(a, []).append(
                Contribution(node.index, position, partial, term)
            )
    for node in nodes:
        if (
            node.is_input
            and node.needs_grad
            and terms.get(node.index)
            and node.index != output
        ):
            adjoint_var[node.index] = adjoint_symbol(node.index)
    return Program(
        expr=expr,
        inputs=tuple(inputs),
        wrt=wrt,
        convention=convention,
        nodes=nodes,
        output=output,
        adjoint_var=adjoint_var,
        adjoint_terms=terms,
        backward_order=order,
    )


def gradient_expressions(program: Program) -> dict[str, sp.Expr]:
    """Each input's gradient as one expression of the inputs (for display).

    Adjoints are substituted back into each other and program names into the
    subexpressions they stand for; `unbroadcast` becomes `sum` where its target is a
    scalar, and disappears elsewhere (all inputs are shown as if of one shape).
    """
    resolved: dict[sp.Symbol, sp.Expr] = {SEED: sp.S.One}
    for i in program.backward_order:
        if i == program.output:
            continue
        resolved[program.adjoint_var[i]] = _resolve(program, i, resolved)
    result: dict[str, sp.Expr] = {}
    for name in program.wrt:
        node = program.input_node(name)
        if node is None or not program.has_gradient(node.index):
            result[name] = sp.S.Zero
            continue
        result[name] = _resolve(program, node.index, resolved)
    return result


def _resolve(
    program: Program, index: int, resolved: dict[sp.Symbol, sp.Expr]
) -> sp.Expr:
    value = (
        program.adjoint(index).xreplace(resolved)
        if index != program.output
        else sp.S.One
    )
    value = value.xreplace({n.var: n.expr for n in program.nodes if n.rule is not None})
    return display_form(value, program)


def display_form(expr: sp.Expr, program: Program | None = None) -> sp.Expr:
    """Rewrite helpers for a reader: safe_recip(a) -> 1/a, unbroadcast -> sum."""

    def unbroadcast(term: sp.Expr, target: sp.Expr, consumer: sp.Expr) -> sp.Expr:
        scalar = not _elementwise_symbols(target)
        return F.sum_(term) if scalar and _elementwise_symbols(term) else term

    def size(arg: sp.Expr) -> sp.Expr:
        symbols = _elementwise_symbols(arg)
        return F.size(next(iter(symbols))) if len(symbols) == 1 else F.size(arg)

    return (
        expr.replace(F.safe_recip, lambda a: 1 / a)
        .replace(F.unbroadcast, unbroadcast)
        .replace(F.size, size)
    )


def _elementwise_symbols(expr: sp.Expr) -> set[sp.Symbol]:
    """Symbols that `expr` depends on elementwise (not only through reductions)."""
    if expr.is_Symbol:
        return {expr}
    if isinstance(expr, sp.Basic) and expr.func in F.REDUCTIONS:
        return set()
    found: set[sp.Symbol] = set()
    for arg in expr.args:
        found |= _elementwise_symbols(arg)
    return found
