"""Local rules as graph operations: a node's partials times an upstream, as nodes.

A registry row's SymPy rule is instantiated with one placeholder per argument
*position* (so SymPy can never cancel `x/x`) and turned into graph operations once
per kind of node (a `Recipe`), then replayed on each node of that kind. The reverse
program (`symgrad.reverse`) multiplies by a node's adjoint; forward mode
(`symgrad.forward`) by an argument's tangent: the same recipes serve both.

Conventions that select rather than multiply (kinks): a piecewise-constant partial
(relu's, clip's, a tie's) selects the upstream, `where(mask, g, 0)`, as PyTorch's
masked backward kernels do, so an inf or nan upstream is stopped where the partial
is 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any

import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.graph import Graph, Node, ancestors

_G = sp.Symbol("_G", real=True)  # the upstream gradient in a local rule
_OUT = sp.Symbol("_out", real=True)  # the node's own value in a local rule


def local_terms(
    graph: Graph, node: Node, upstream: Node, needs: Set[int], convention: str
) -> list[tuple[int, Node]]:
    """(position, upstream * d node / d arg) for each argument that needs a gradient.

    The SymPy rule is instantiated and turned into graph operations once per kind of
    node (operation, which arguments are which constants, which need a gradient,
    whether the upstream is the constant 1): a `Recipe`, replayed here."""
    args = node.args
    pattern = tuple([None if a.op != "const" else _constant_key(a) for a in args])
    wanted = tuple([a.id in needs for a in args])
    one = upstream.op == "const" and upstream.value == 1.0
    recipe = _recipe(node.op, pattern, wanted, one, convention)
    return _replay(graph, recipe, node, (upstream,))


def tangent_term(
    graph: Graph, node: Node, tangents: Sequence[Node | None], convention: str
) -> Node | None:
    """The tangent of `node` by its row's own forward rule (`Rule.tangent`), given
    its arguments' tangents (None: 0); None if the row has no such rule."""
    rule = registry.BY_NAME[node.op]
    if rule.tangent is None or (convention == "jax" and rule.jax is not None):
        return None  # (a JAX-convention row: its jvp is its partials')
    pattern = tuple([None if a.op != "const" else _constant_key(a) for a in node.args])
    present = tuple([t is not None for t in tangents])
    recipe = _tangent_recipe(node.op, pattern, present, convention)
    terms = _replay(graph, recipe, node, tuple(tangents))
    return terms[0][1] if terms else None


def _replay(
    graph: Graph, recipe: Recipe, node: Node, upstreams: tuple[Node | None, ...]
) -> list[tuple[int, Node]]:
    # the values the steps read, by index (`Recipe.plan`): the node, its arguments,
    # the upstreams, then each step's result as it is built
    values: list[Any] = [node, *node.args, *upstreams]
    append = values.append
    apply = graph.apply
    for op, where in recipe.plan:
        if op == "const":
            append(graph.const(where))
        elif op == "dtype":
            append(graph.dtype())
        elif len(where) == 2:
            append(apply(op, values[where[0]], values[where[1]]))
        else:
            append(apply(op, *[values[i] for i in where]))
    return [(position, values[i]) for position, i in recipe.outputs]


Ref = tuple[str, object]


@dataclass(frozen=True)
class Recipe:
    """Graph operations computing a node's local terms from its arguments (`a`, by
    position), its output (`o`), the upstream gradient (`g`) and constants (`c`)."""

    steps: tuple[tuple[str, tuple[Ref, ...]], ...]
    terms: tuple[tuple[int, Ref], ...]
    # The same with each reference as an index among the values a replay reads (the
    # node, its arguments, the upstreams, then the steps' results): what `_replay`
    # runs. A constant's step holds its value instead.
    plan: tuple[tuple[str, Any], ...] = ()
    outputs: tuple[tuple[int, int], ...] = ()


def _constant_key(arg: Node) -> object:
    """What a rule may see of an argument: a finite nonzero number, else nothing."""
    value = arg.value
    if arg.is_const and type(value) is not bool and value and math.isfinite(value):
        return float(value)
    return None


@functools.lru_cache(maxsize=4096)
def _recipe(
    op: str,
    pattern: tuple[object, ...],
    wanted: tuple[bool, ...],
    one: bool,
    convention: str,
) -> Recipe:
    rule = registry.BY_NAME[op]
    scratch = Graph()
    placeholders = [_placeholder_symbol(v, i) for i, v in enumerate(pattern)]
    args = [scratch.input(f"_a{i}") for i in range(len(pattern))]
    out_node = scratch.input("_out")
    g_node = scratch.input("_g")
    mapping: dict[sp.Basic, Node] = {_G: g_node, _OUT: out_node}
    for symbol, arg in zip(placeholders, args, strict=True):
        if isinstance(symbol, sp.Symbol):
            mapping[symbol] = arg
    partials = rule.partials(placeholders, _OUT, convention)
    # The gradient of sum(f) starts from the constant 1: folded into the partials.
    g = sp.S.One if one else _G
    results: list[tuple[int, Node]] = []
    for position, partial in enumerate(partials):
        if not wanted[position] or partial == 0:
            continue
        if partial.has(registry.UPSTREAM):  # a rule that moves the upstream
            term_expr: sp.Expr = partial.subs(registry.UPSTREAM, g)
        elif partial == 1:
            term_expr = g
        elif partial.func is F.select:  # a rule that selects: keep the upstream out
            term_expr = F.select(partial.args[0], g * partial.args[1])
        elif _piecewise_constant(partial) or partial.func is F.where:
            term_expr = _select(partial, g)
        else:
            term_expr = g * partial
        results.append((position, to_graph(scratch, term_expr, mapping)))
    refs: dict[int, Ref] = {a.id: ("a", i) for i, a in enumerate(args)}
    refs[out_node.id] = ("o", None)
    refs[g_node.id] = ("g", None)
    return _recorded(results, refs, len(args), 1)


@functools.lru_cache(maxsize=1024)
def _tangent_recipe(
    op: str, pattern: tuple[object, ...], present: tuple[bool, ...], convention: str
) -> Recipe:
    """The recipe of a row's forward rule: its tangent from the arguments' tangents
    (absent ones are 0, so SymPy drops their terms)."""
    rule = registry.BY_NAME[op]
    assert rule.tangent is not None
    scratch = Graph()
    placeholders = [_placeholder_symbol(v, i) for i, v in enumerate(pattern)]
    args = [scratch.input(f"_a{i}") for i in range(len(pattern))]
    out_node = scratch.input("_out")
    dots = [sp.Symbol(f"_t{i}", real=True) for i in range(len(pattern))]
    dot_nodes = [scratch.input(f"_t{i}") for i in range(len(pattern))]
    mapping: dict[sp.Basic, Node] = {_OUT: out_node}
    for symbol, arg in zip(placeholders, args, strict=True):
        if isinstance(symbol, sp.Symbol):
            mapping[symbol] = arg
    mapping.update(zip(dots, dot_nodes, strict=True))
    expr = sp.sympify(
        rule.tangent(
            *placeholders,
            _OUT,
            *(d if p else sp.S.Zero for d, p in zip(dots, present, strict=True)),
        )
    )
    results = [] if expr == 0 else [(0, to_graph(scratch, expr, mapping))]
    refs: dict[int, Ref] = {a.id: ("a", i) for i, a in enumerate(args)}
    refs[out_node.id] = ("o", None)
    refs.update({d.id: ("t", i) for i, d in enumerate(dot_nodes)})
    return _recorded(results, refs, len(args), len(args))


def _recorded(
    results: list[tuple[int, Node]], refs: dict[int, Ref], arity: int, upstreams: int
) -> Recipe:
    """The scratch-graph nodes computing `results`, as replayable steps (for a node
    of `arity` arguments, replayed with `upstreams` upstream values)."""
    steps: list[tuple[str, tuple[Ref, ...]]] = []
    for n in ancestors([r for _, r in results]):
        if n.id in refs:
            continue
        if n.op == "const":
            steps.append(("const", (("c", n.value),)))
        elif n.op == "dtype":
            steps.append(("dtype", ()))
        else:
            steps.append((n.op, tuple(refs[a.id] for a in n.args)))
        refs[n.id] = ("n", len(steps) - 1)
    terms = tuple((p, refs[r.id]) for p, r in results)
    # where each reference is among a replay's values: the node (0), its arguments
    # (1...), the upstream `g` or each argument's tangent `t`, then the steps
    first = {"o": 0, "a": 1, "g": 1 + arity, "t": 1 + arity, "n": 1 + arity + upstreams}

    def index(ref: Ref) -> int:
        kind, value = ref
        return first[kind] + (0 if value is None else value)  # type: ignore[operator]

    plan = tuple(
        (op, refs_[0][1])
        if op == "const"
        else (op, ())
        if op == "dtype"
        else (op, tuple(index(r) for r in refs_))
        for op, refs_ in steps
    )
    outputs = tuple((p, index(ref)) for p, ref in terms)
    return Recipe(tuple(steps), terms, plan, outputs)


def _placeholder_symbol(value: object, position: int) -> sp.Expr:
    if value is None:
        return sp.Symbol(f"_a{position}", real=True)
    v = float(value)  # type: ignore[arg-type]
    if v.is_integer() and abs(v) < 2**53:
        return sp.Integer(int(v))
    return sp.Float(v)


def _piecewise_constant(partial: sp.Expr) -> bool:
    """Whether a partial is made of masks and numbers only (relu's, clip's, where's)."""
    if partial.is_Number or partial.func in F.MASKS:
        return True
    if partial.func is F.where:
        return all(_piecewise_constant(a) for a in partial.args[1:])
    if isinstance(partial, (sp.Add, sp.Mul, sp.Pow)):
        return all(_piecewise_constant(a) for a in partial.args)
    return False


def _select(partial: sp.Expr, upstream: sp.Expr) -> sp.Expr:
    """upstream * partial where the partial is nonzero, else exactly 0.

    PyTorch selects rather than multiplies at kinks (relu's threshold_backward, clamp's
    and where's backward), so an infinite or nan upstream gradient is stopped where the
    partial is 0: inf * 0 would give nan.
    """
    if partial.func is F.where:  # select between the sides; each side as it is
        cond, a, b = partial.args

        def side(p: sp.Expr) -> sp.Expr:
            return _select(p, upstream) if _piecewise_constant(p) else upstream * p

        return F.where(cond, side(a), side(b))
    if partial.is_Number:
        return upstream * partial
    pieces = [_masked_piece(term) for term in sp.Add.make_args(partial)]
    if all(p is not None for p in pieces):  # c1*[m1] + c2*[m2]: disjoint masks
        return sp.Add(
            *(F.select(condition, upstream * c) for c, condition in pieces)  # type: ignore[misc]
        )
    return F.select(F.ne(partial, 0), upstream * partial)


def _masked_piece(term: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """A term `c * [m1] * [m2]` as (c, m1 and m2), else None."""
    coefficient, rest = term.as_coeff_Mul()
    factors = sp.Mul.make_args(rest)
    if not all(f.func in F.MASKS for f in factors):
        return None
    condition = factors[0]
    for factor in factors[1:]:
        condition = F.logical_and(condition, factor)
    return coefficient, condition


def to_graph(graph: Graph, expr: sp.Expr, mapping: dict[sp.Basic, Node]) -> Node:
    """A SymPy expression of placeholders (a local rule) as graph nodes."""
    memo: dict[sp.Basic, Node] = dict(mapping)
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        if e in memo:
            continue
        if e.is_Number or e.is_NumberSymbol or e in (sp.oo, -sp.oo, sp.nan):
            memo[e] = graph.const(float(e))
            continue
        if e.is_Symbol:
            raise ValueError(f"unbound symbol {e} in a registry rule")
        parts = _parts(e)
        if not ready:
            stack.append((e, True))
            stack.extend((p, False) for p in parts if p not in memo)
            continue
        memo[e] = _build(graph, e, [memo[p] for p in parts])
    return memo[expr]


def _parts(e: sp.Basic) -> list[sp.Basic]:
    if isinstance(e, sp.Mul):
        coeff, factors = e.as_coeff_mul()
        parts = [f.base if _is_divisor(f) else f for f in factors]
        return parts + ([coeff] if coeff not in (1, -1) else [])
    if isinstance(e, sp.Pow):
        return [e.base] + ([e.exp] if not _special_power(e.exp) else [])
    if isinstance(e, sp.Add):
        return [(-t if _negated(t) else t) for t in e.args]
    if isinstance(e, sp.polygamma):
        return [e.args[1]]
    if isinstance(e, sp.UnevaluatedExpr):  # a rule's grouping: computed as grouped
        return [e.args[0]]
    return list(e.args)


def _is_divisor(f: sp.Basic) -> bool:
    return isinstance(f, sp.Pow) and f.exp == -1


def _negated(t: sp.Basic) -> bool:
    return isinstance(t, sp.Mul) and t.as_coeff_mul()[0] == -1


def _special_power(exponent: sp.Basic) -> bool:
    return exponent in (sp.S.Half, -sp.S.Half, -1)


def _build(graph: Graph, e: sp.Basic, parts: list[Node]) -> Node:
    if isinstance(e, sp.Add):
        result = parts[0] if not _negated(e.args[0]) else graph.apply("neg", parts[0])
        for t, node in zip(e.args[1:], parts[1:], strict=True):
            result = graph.apply("sub" if _negated(t) else "add", result, node)
        return result
    if isinstance(e, sp.Mul):
        coeff, factors = e.as_coeff_mul()
        numerator: Node | None = None
        if coeff not in (1, -1):
            numerator = parts[-1]
        denominator: Node | None = None
        for f, node in zip(factors, parts, strict=False):
            if _is_divisor(f):
                denominator = (
                    node
                    if denominator is None
                    else graph.apply("mul", denominator, node)
                )
            else:
                numerator = (
                    node if numerator is None else graph.apply("mul", numerator, node)
                )
        if numerator is None:
            numerator = graph.const(1.0)
        if coeff == -1:
            numerator = graph.apply("neg", numerator)
        if denominator is not None:
            numerator = graph.apply("div", numerator, denominator)
        return numerator
    if isinstance(e, sp.Pow):
        base = parts[0]
        if e.exp == -1:
            return graph.apply("div", graph.const(1.0), base)
        if e.exp == sp.S.Half:
            return graph.apply("sqrt", base)
        if e.exp == -sp.S.Half:
            return graph.apply("div", graph.const(1.0), graph.apply("sqrt", base))
        return graph.apply("pow", base, parts[1])
    if isinstance(e, sp.UnevaluatedExpr):
        return parts[0]
    if isinstance(e, sp.polygamma):
        order = int(e.args[0])
        op = {0: "digamma", 1: "trigamma"}.get(order)
        if op is not None:
            return graph.apply(op, parts[0])
        return graph.apply("polygamma", graph.const(float(order)), parts[0])
    rule = registry.BY_CLASS.get(type(e))
    if rule is None:
        raise NotImplementedError(
            f"no registry row for SymPy's {type(e).__name__} (in a derivative rule)"
        )
    return graph.apply(rule.name, *parts)
