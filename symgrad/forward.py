"""Forward mode: tangent nodes added to the expression graph.

Given tangents for some nodes (the inputs' directions ẋ), each node's tangent is the
sum over its arguments of the local partial times the argument's tangent. The local
rules are the registry's, replayed by `symgrad.local_rules` with the argument's
tangent as the upstream, so kinks select here as they do in reverse mode: relu's
tangent is where(x > 0, ẋ, 0) and clip's is ẋ inside its bounds, as PyTorch's forward
AD computes them (its `auto_element_wise` formulas are the backward ones with the
tangent as the upstream). Two kinds of rows need more than that product:

- reductions (sum, mean, max(x), norm, ...): the product has the argument's shape and
  the tangent is its sum, counted over the argument's shape when the tangent is
  smaller (a scalar input's direction in sum(x + y));
- `unbroadcast`, which sums a gradient back to an input's shape, is linear: the
  tangent is the same summing of the tangent.

Masks carry no tangent. `where(c, a, b)`'s tangent selects, where(c, ȧ, ḃ), so a nan
tangent in the branch not taken never shows, as in first order.

Pushed through the reverse program's adjoints with vectors as the inputs' tangents,
this is forward-over-reverse, the Hessian-vector product; with the tangent 1 on one
scalar input it gives a Hessian column as graph nodes, and the entries that fold to
the constant 0 are the structural zeros (`hessian_columns`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from symgrad.graph import Graph, Node, ancestors, walk_consumers
from symgrad.local_rules import local_terms, tangent_term

# Rows without a tangent whatever their arguments': masks, dtypes, counts.
NO_TANGENT = frozenset({"dtype", "float", "any_like", "size"})
# Rows linear in their first argument whose other arguments are shapes or numbers
# (summing back, slicing, scattering): the tangent is the same operation of its
# tangent.
LINEAR_IN_FIRST = frozenset(
    {"unbroadcast", "slice", "index", "unslice", "unindex", "expand"}
)

Deps = Mapping[int, frozenset[int]]


class _Cover:
    """The inputs whose broadcast shape a tangent has at least: a union of parts,
    computed when first read (then kept).

    Along a long sum each partial sum's tangent covers every input before it: copying
    ever larger sets at each step would cost time and memory quadratic in the sum's
    length, and the sets are read only at reductions and slices. A cover never changes
    once made (a node's cover is extended by a new cover over the old one), so what
    a read returns is the union the parts held when it was made."""

    __slots__ = ("_own", "_parts", "_items")

    def __init__(
        self, own: frozenset[int] = frozenset(), parts: tuple[_Cover, ...] = ()
    ) -> None:
        self._own = own
        self._parts = parts
        self._items: frozenset[int] | None = None if parts else own

    @classmethod
    def union(cls, covers: Iterable[_Cover | None]) -> _Cover | None:
        """The union of `covers` (None: empty); one of them when it is the only one."""
        present = tuple({id(c): c for c in covers if c is not None}.values())
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        return cls(parts=present)

    def items(self) -> frozenset[int]:
        if self._items is None:
            found: set[int] = set()
            seen: set[int] = set()
            stack: list[_Cover] = [self]
            while stack:  # iterative: the parts nest as deep as a sum is long
                cover = stack.pop()
                if id(cover) in seen:
                    continue
                seen.add(id(cover))
                if cover._items is not None:
                    found.update(cover._items)
                    continue
                found.update(cover._own)
                stack.extend(cover._parts)
            self._items = frozenset(found)
        return self._items


def _covers(needed: frozenset[int], cover: _Cover | None) -> bool:
    """Whether the tangent with `cover` has at least the shape of inputs `needed`."""
    return needed <= (frozenset() if cover is None else cover.items())


def push(
    graph: Graph,
    nodes: Iterable[Node],
    seeds: Mapping[int, Node],
    convention: str,
    deps: Deps,
) -> dict[int, Node]:
    """The tangent of each node of `nodes` (topological order) that has one.

    `seeds` maps node ids (inputs) to their tangent nodes, which must have the shape of
    the node they belong to. `deps` gives, for each node, the inputs whose shapes it
    broadcasts (`reverse.dependencies`): where a reduction's argument may be larger
    than its tangent, the tangent is summed as if broadcast to the argument.
    """
    tangents: dict[int, Node] = dict(seeds)
    nodes = list(nodes)
    # The inputs whose broadcast shape each tangent has at least (seeds: their own),
    # keyed by the tangent node's id; read only at slices and reductions (none: not
    # kept).
    shaped: dict[int, _Cover] | None = None
    if any(n.op in ("slice", "index") or (n.rule and n.rule.reduction) for n in nodes):
        shaped = {t.id: _Cover(frozenset({i})) for i, t in seeds.items()}
    for node in nodes:
        if node.id in tangents or not node.args:
            continue
        tangent = _tangent(graph, node, tangents, shaped, convention, deps)
        if tangent is None or (tangent.op == "const" and tangent.value == 0):
            continue
        tangents[node.id] = tangent
    return tangents


def _tangent(
    graph: Graph,
    node: Node,
    tangents: dict[int, Node],
    shaped: dict[int, _Cover] | None,
    convention: str,
    deps: Deps,
) -> Node | None:
    """The tangent of `node` (see `push`; `shaped` None: no slice or reduction
    reads it)."""
    if node.is_mask or node.op in NO_TANGENT:
        return None
    args = node.args
    carried = [tangents.get(a.id) for a in args]  # None: no tangent
    if not any(carried):  # (a Node is always true)
        return None
    rule = node.rule
    assert rule is not None, node
    if node.op in LINEAR_IN_FIRST:  # the same operation moves the tangent
        first = carried[0]
        if first is None:
            return None
        if node.op not in ("slice", "index"):
            return graph.apply(node.op, first, *node.args[1:])
        assert shaped is not None
        if not _covers(
            deps.get(node.args[0].id, frozenset({-1})), shaped.get(first.id)
        ):  # a smaller tangent: stretch it first
            first = graph.apply("expand", first, node.args[0])
        tangent = graph.apply(node.op, first, *node.args[1:])
        shaped[tangent.id] = _Cover(deps.get(node.id, frozenset()))
        return tangent
    own = None
    if rule.tangent is not None:  # the row's own forward rule
        own = tangent_term(graph, node, carried, convention)
    if own is not None:
        if shaped is None:
            return own
        cover = _Cover.union(
            [shaped.get(own.id)] + [shaped.get(t.id) for t in carried if t is not None]
        )
        if cover is not None:
            shaped[own.id] = cover
        return own
    # the arguments sharing one tangent (x in x*x) go through one replay of the rule
    groups: dict[int, tuple[Node, set[int]]] = {}
    for a, t in zip(args, carried, strict=True):
        if t is not None:
            group = groups.get(t.id)
            if group is None:
                groups[t.id] = (t, {a.id})
            else:
                group[1].add(a.id)
    terms: list[Node] = []
    covers: list[_Cover | None] = []
    for t, args in groups.values():
        for position, term in local_terms(graph, node, t, args, convention):
            if rule.reduction:
                assert shaped is not None
                arg = node.args[position]
                if _covers(deps.get(arg.id, frozenset({-1})), shaped.get(t.id)):
                    term = graph.apply("sum", term)
                else:  # the tangent may be smaller: sum it as broadcast to arg
                    term = graph.apply("unbroadcast", term, node, arg)
            terms.append(term)
        if shaped is not None:
            covers.append(shaped.get(t.id))
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = graph.apply("add", total, term)
    if node.op == "mul":
        total = _norm_limit(graph, node, total, tangents, convention, deps)
    if not rule.reduction and shaped is not None:
        cover = _Cover.union([shaped.get(total.id), *covers])
        if cover is not None:
            shaped[total.id] = cover
    return total


def _norm_limit(
    graph: Graph,
    node: Node,
    tangent: Node,
    tangents: Mapping[int, Node],
    convention: str,
    deps: Deps,
) -> Node:
    """The tangent of norm's gradient `(x / where(N != 0, N, 1)) * select(N != 0, G)`
    (the registry's row) at N = 0.

    There the gradient is 0 (PyTorch's convention) and its tangent would be 0 too,
    but the second derivative of phi(norm(x)) has a limit at x = 0 when the adjoint
    G = phi'(N) g vanishes there: phi''(0) g times the tangent of x (norm(x)**2: 2I),
    and G / N -> dG/dN, found by pushing the tangent 1 from N. Where G is not 0 at
    N = 0 (norm(x) itself) there is no limit: nan, as PyTorch's double backward."""
    ratio, selected = node.args
    if selected.op != "select":
        selected, ratio = ratio, selected
    if selected.op != "select" or ratio.op != "div":
        return tangent
    mask, adjoint = selected.args
    if not (mask.op == "ne" and mask.args[0].op == "norm"):
        return tangent
    norm = mask.args[0]
    x = norm.args[0]
    divisor = ratio.args[1]
    if (
        ratio.args[0] is not x
        or divisor.op != "where"
        or divisor.args[:2] != (mask, norm)
        or x.id not in tangents
    ):
        return tangent
    slope = push(
        graph,
        _reachable(norm, walk_consumers(ancestors([adjoint]))),
        {norm.id: graph.const(1.0)},
        convention,
        deps,
    ).get(adjoint.id)
    direction = tangents[x.id]
    if slope is None:
        limit = graph.const(0.0)
    elif direction.is_const and direction.value == 1.0:  # a Hessian column
        limit = slope
    else:
        limit = graph.apply("mul", slope, direction)
    at_zero = graph.apply(
        "where",
        graph.apply("eq", adjoint, graph.const(0.0)),
        limit,
        graph.const(math.nan),
    )
    return graph.apply("where", mask, tangent, at_zero)


def carries(node: Node, position: int) -> bool:
    """Whether argument `position` of `node` can pass a tangent into it: not into a
    mask or a dtype, nor through an argument read only for its shape (the target
    and consumer of `unbroadcast`) or as a condition (where's, select's)."""
    if node.is_mask or node.op in NO_TANGENT:
        return False
    if node.op in LINEAR_IN_FIRST:
        return position == 0
    if node.op in ("where", "select"):
        return position != 0
    return True


def useful(targets: Iterable[Node]) -> list[Node]:
    """The nodes whose tangents can reach `targets`, targets included, in order."""
    seen: dict[int, Node] = {}
    stack = list(targets)
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen[node.id] = node
        stack.extend(
            a for i, a in enumerate(node.args) if a.id not in seen and carries(node, i)
        )
    return [seen[i] for i in sorted(seen)]


def hessian_columns(
    graph: Graph,
    gradients: Sequence[Node | None],
    inputs: Sequence[Node],
    convention: str,
    deps: Deps,
) -> dict[tuple[int, int], Node]:
    """The lower triangle of the Hessian of scalar inputs, as graph nodes.

    `gradients[i]` is the gradient (an adjoint node, or None for 0) of `inputs[i]`;
    entry (i, j), i >= j, is the tangent of gradients[i] when inputs[j] moves with
    tangent 1. Only the nodes that depend on inputs[j] are visited for column j, so
    a sparse Hessian costs what its nonzeros cost. Entries absent from the result are
    structurally zero (no path, or a tangent that folds to 0: abs'' at any point).
    """
    targets = [g for g in gradients if g is not None]
    nodes = useful(targets)
    consumers: dict[int, list[Node]] = {}
    for node in nodes:
        for i, arg in enumerate(node.args):
            if carries(node, i):
                consumers.setdefault(arg.id, []).append(node)
    one = graph.const(1.0)
    index = {g.id: i for i, g in enumerate(gradients) if g is not None}
    entries: dict[tuple[int, int], Node] = {}
    for j, x in enumerate(inputs):
        reached = _reachable(x, consumers)
        if not reached:
            continue
        tangents = push(graph, reached, {x.id: one}, convention, deps)
        for node_id, i in index.items():
            if i >= j and node_id in tangents:
                entries[(i, j)] = tangents[node_id]
    return entries


def _reachable(start: Node, consumers: Mapping[int, list[Node]]) -> list[Node]:
    """The nodes (among those `consumers` covers) that depend on `start`, in order."""
    seen: dict[int, Node] = {}
    stack = list(consumers.get(start.id, ()))
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen[node.id] = node
        stack.extend(c for c in consumers.get(node.id, ()) if c.id not in seen)
    return [seen[i] for i in sorted(seen)]
