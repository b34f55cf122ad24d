"""The reverse program: adjoint nodes added to the expression graph.

For the output node f and an upstream gradient (grad_output, or the constant 1 for
the gradient of sum(f)), each node's adjoint is the sum over its consumers of the
consumer's adjoint times the registry's local partial derivative. The partials are
the registry rows' SymPy rules, instantiated with one placeholder per argument
*position* (so SymPy can never cancel `x/x`), then turned into graph nodes; the
adjoints live in the same hash-consed graph as the forward trace, so a partial that
equals a forward value (exp's is its own output) is that node.

Conventions that select rather than multiply:

- kinks: a piecewise-constant partial (relu's, clip's, a tie's) selects the upstream
  gradient, `where(mask, g, 0)`, as PyTorch's masked backward kernels do, so an inf or
  nan upstream is stopped where the partial is 0;
- `where(c, a, b)`: the branch not taken sends nothing into the gradient. The
  adjoint of every node inside a branch carries the branch's condition as a gate and
  each contribution it makes is selected by it, so nan partials there (sqrt at -1,
  1/y at 0) never reach the inputs: the derivative is where(c, a', b'), the
  double-where idiom PyTorch and JAX users write by hand.

Broadcasting: a contribution to an argument that depends on fewer inputs than its
consumer is summed back to the argument's shape (`unbroadcast`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.graph import GRAD_OUTPUT, Graph, Node, ancestors

CONVENTIONS = ("torch", "jax")
# Above this many forward operations one backward pass serves both grad_output=None
# (run with 1) and a given grad_output: the generated code is half as long.
ONE_PASS_NODES = 5_000

_G = sp.Symbol("_G", real=True)  # the upstream gradient in a local rule
_OUT = sp.Symbol("_out", real=True)  # the node's own value in a local rule


@dataclass
class Contribution:
    """One term of an adjoint: `source`'s adjoint times d source / d target."""

    source: Node  # the consumer
    position: int  # which argument of the consumer
    target: Node
    term: Node  # the contribution, summed back to the target's shape


@dataclass
class Backward:
    """The adjoints for one upstream gradient (`seed`)."""

    seed: Node
    adjoints: dict[int, Node] = field(default_factory=dict)  # node id -> adjoint
    terms: dict[int, list[Contribution]] = field(default_factory=dict)
    gates: dict[int, Node] = field(default_factory=dict)  # where-branch conditions
    order: list[Node] = field(default_factory=list)  # nodes with adjoints, f first

    def gradient(self, node: Node) -> Node | None:
        return self.adjoints.get(node.id)


@dataclass
class Program:
    """An expression's graph, its output, and its reverse program."""

    text: str
    graph: Graph
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    convention: str
    output: Node
    input_nodes: dict[str, Node]
    backward: Backward  # upstream gradient: the grad_output input
    # upstream gradient 1 (the gradient of sum(f)) folded into the partials; above
    # ONE_PASS_NODES it is `backward` itself, run with grad_output = 1
    default_backward: Backward

    @functools.cached_property
    def forward_nodes(self) -> list[Node]:
        """The nodes the value depends on, arguments first (computed once)."""
        return ancestors([self.output])

    def gradients(self, default: bool) -> dict[str, Node | None]:
        backward = self.default_backward if default else self.backward
        return {n: backward.gradient(self.input_nodes[n]) for n in self.wrt}

    def bindings(
        self, values: Mapping[str, Any], grad_output: Any = None
    ) -> dict[int, Any]:
        """Input values (converted as generated modules convert them) by node id."""
        from symgrad.evaluate import as_input

        bound = {self.input_nodes[n].id: as_input(values[n]) for n in self.inputs}
        grad_node = self.graph.find_input(GRAD_OUTPUT)
        if grad_node is not None:
            import numpy as np

            seed = 1.0 if grad_output is None else np.asarray(grad_output)
            bound[grad_node.id] = seed
        return bound

    def evaluate(
        self, values: Mapping[str, Any], grad_output: Any = None, *, grads: bool = True
    ) -> dict[int, Any]:
        """Every node's value: the forward trace and, with `grads`, the adjoints."""
        from symgrad import evaluate

        bound = self.bindings(values, grad_output)
        wanted = [self.output]
        if grads:
            backward = self.default_backward if grad_output is None else self.backward
            wanted += [n for n in backward.adjoints.values()]
        return evaluate.run(ancestors(wanted), bound)

    def value_and_grad(
        self, values: Mapping[str, Any], grad_output: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """The value and each wrt input's gradient, as the generated module gives."""
        import numpy as np

        from symgrad.evaluate import as_input, helper

        grad_like = helper("_grad_like")
        computed = self.evaluate(values, grad_output)
        value = np.asarray(computed[self.output.id])
        grads: dict[str, Any] = {}
        arrays = {n: as_input(values[n]) for n in self.inputs}
        keep = (value, grad_output, *arrays.values())
        for name, node in self.gradients(grad_output is None).items():
            grad = 0.0 if node is None else computed[node.id]
            with np.errstate(all="ignore"):
                grads[name] = grad_like(grad, arrays[name], keep)
        return value, grads


class Function:
    """A program as callables with the generated module's signatures (evaluator)."""

    def __init__(self, program: Program):
        self.program = program
        self.INPUTS = program.inputs

    def _values(self, args: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.program.inputs, args, strict=True))

    def forward(self, *args: Any) -> Any:
        import numpy as np

        values = self.program.evaluate(self._values(args), grads=False)
        return np.asarray(values[self.program.output.id])

    def value_and_grad(self, *args: Any, grad_output: Any = None) -> tuple[Any, Any]:
        value, grads = self.program.value_and_grad(self._values(args), grad_output)
        return value, tuple(grads[n] for n in self.program.wrt)

    def backward(self, *args: Any, grad_output: Any = None) -> Any:
        return self.value_and_grad(*args, grad_output=grad_output)[1]


def build(
    text: str,
    *,
    wrt: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    convention: str = "torch",
) -> Program:
    """Parse `text` and build its reverse program."""
    from symgrad.parse import parse

    parsed = parse(text)
    return build_program(
        parsed.text,
        parsed.graph,
        parsed.output,
        tuple(inputs or parsed.inputs),
        wrt=wrt,
        convention=convention,
    )


def build_program(
    text: str,
    graph: Graph,
    output: Node,
    inputs: tuple[str, ...],
    *,
    wrt: Sequence[str] | None = None,
    convention: str = "torch",
) -> Program:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}: use 'torch' or 'jax'")
    wrt = tuple(inputs if wrt is None else wrt)
    input_nodes = {name: graph.input(name) for name in inputs}
    forward = ancestors([output])
    deps = _dependencies(forward)
    wanted = {input_nodes[n].id for n in wrt}
    needs = _needs_grad(forward, wanted)
    seeded = _backward(
        graph, forward, output, graph.input(GRAD_OUTPUT), deps, needs, convention
    )
    default = (
        _backward(graph, forward, output, graph.const(1.0), deps, needs, convention)
        if len(forward) <= ONE_PASS_NODES
        else seeded
    )
    return Program(
        text=text,
        graph=graph,
        inputs=inputs,
        wrt=wrt,
        convention=convention,
        output=output,
        input_nodes=input_nodes,
        backward=seeded,
        default_backward=default,
    )


def _needs_grad(forward: list[Node], wanted: set[int]) -> set[int]:
    needs: set[int] = set()
    for node in forward:
        if node.id in wanted or any(a.id in needs for a in node.args):
            needs.add(node.id)
    return needs


# Past this many inputs a node's set of inputs is not tracked (MANY): sets growing
# along a long sum would cost quadratic time and memory.
MAX_TRACKED_INPUTS = 64
MANY: frozenset[int] = frozenset({-1})  # "possibly any input"


def _dependencies(forward: list[Node]) -> dict[int, frozenset[int]]:
    """The inputs each node depends on elementwise (a reduction's result: none)."""
    deps: dict[int, frozenset[int]] = {}
    for node in forward:
        if node.op == "input":
            deps[node.id] = frozenset({node.id})
        elif node.op in ("const", "dtype") or (node.rule and node.rule.reduction):
            deps[node.id] = frozenset()
        else:
            parts = [deps[a.id] for a in node.args]
            if any(p is MANY for p in parts):
                deps[node.id] = MANY
                continue
            union = frozenset().union(*parts)
            deps[node.id] = union if len(union) <= MAX_TRACKED_INPUTS else MANY
    return deps


def _may_broadcast(target: frozenset[int], node: frozenset[int]) -> bool:
    """Whether `node` may have more elements than its argument `target` (it depends
    on inputs the argument does not); with untracked sets, conservatively yes (the
    summing back is a no-op at run time when the shapes agree)."""
    if node is MANY:
        return True
    return target < node


def _backward(
    graph: Graph,
    forward: list[Node],
    output: Node,
    seed: Node,
    deps: dict[int, frozenset[int]],
    needs: set[int],
    convention: str,
) -> Backward:
    result = Backward(seed=seed)
    if output.id not in needs:
        return result
    pending: dict[int, list[Contribution]] = {}
    gate_of: dict[int, list[Node | None]] = {output.id: [None]}
    for node in reversed(forward):
        if node.id not in needs:
            continue
        if node is output:
            adjoint = seed
        else:
            contributions = pending.pop(node.id, [])
            if not contributions:
                continue
            adjoint = contributions[0].term
            for c in contributions[1:]:
                adjoint = graph.apply("add", adjoint, c.term)
            result.terms[node.id] = contributions
        result.adjoints[node.id] = adjoint
        result.order.append(node)
        gate = _combine_gates(graph, gate_of.pop(node.id, [None]))
        if gate is not None:
            result.gates[node.id] = gate
        if node.op == "input" or not node.args:
            continue
        for position, term in _local_terms(graph, node, adjoint, needs, convention):
            target = node.args[position]
            branch_gate = gate
            if node.op == "where" and position in (1, 2):
                condition = node.args[0]
                if position == 2:
                    condition = graph.apply("not", condition)
                branch_gate = (
                    condition if gate is None else graph.apply("and", gate, condition)
                )
            elif gate is not None:
                term = graph.apply("select", gate, term)
            if len(node.args) > 1 and _may_broadcast(deps[target.id], deps[node.id]):
                term = graph.apply("unbroadcast", term, target, node)
                if branch_gate is not None:  # the gate, or-reduced to target's shape
                    branch_gate = graph.apply("any_like", branch_gate, target)
            pending.setdefault(target.id, []).append(
                Contribution(node, position, target, term)
            )
            gate_of.setdefault(target.id, []).append(branch_gate)
    return result


def _combine_gates(graph: Graph, gates: list[Node | None]) -> Node | None:
    """The gate of a sum of contributions: none if any contribution is ungated."""
    if any(g is None for g in gates):
        return None
    combined = gates[0]
    for g in gates[1:]:
        if g is not combined:
            combined = graph.apply("or", combined, g)  # type: ignore[arg-type]
    return combined


def _local_terms(
    graph: Graph, node: Node, upstream: Node, needs: set[int], convention: str
) -> list[tuple[int, Node]]:
    """(position, upstream * d node / d arg) for each argument that needs a gradient.

    The SymPy rule is instantiated and turned into graph operations once per kind of
    node (operation, which arguments are which constants, which need a gradient,
    whether the upstream is the constant 1): a `Recipe`, replayed here."""
    pattern = tuple(_constant_key(a) for a in node.args)
    wanted = tuple(a.id in needs for a in node.args)
    one = upstream.is_const and upstream.value == 1.0
    recipe = _recipe(node.op, pattern, wanted, one, convention)
    built: list[Node] = []
    for op, refs in recipe.steps:
        if op == "const":
            built.append(graph.const(refs[0][1]))  # type: ignore[arg-type]
        elif op == "dtype":
            built.append(graph.dtype())
        else:
            args = [_resolve(ref, built, node, upstream) for ref in refs]
            built.append(graph.apply(op, *args))
    return [
        (position, _resolve(ref, built, node, upstream))
        for position, ref in recipe.terms
    ]


Ref = tuple[str, object]


@dataclass(frozen=True)
class Recipe:
    """Graph operations computing a node's local terms from its arguments (`a`, by
    position), its output (`o`), the upstream gradient (`g`) and constants (`c`)."""

    steps: tuple[tuple[str, tuple[Ref, ...]], ...]
    terms: tuple[tuple[int, Ref], ...]


def _resolve(ref: Ref, built: list[Node], node: Node, upstream: Node) -> Node:
    kind, value = ref
    if kind == "a":
        return node.args[value]  # type: ignore[index]
    if kind == "o":
        return node
    if kind == "g":
        return upstream
    return built[value]  # type: ignore[index]


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
        if partial == 1:
            term_expr: sp.Expr = g
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
    return Recipe(tuple(steps), tuple((p, refs[r.id]) for p, r in results))


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
