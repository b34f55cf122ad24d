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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from symgrad import registry
from symgrad.graph import GRAD_OUTPUT, Graph, Node, ancestors
from symgrad.local_rules import local_terms

CONVENTIONS = ("torch", "jax")
# Tangent (jvp) and vector (hvp) inputs are named `_dot_<input>` (x-dot: ẋ).
TANGENT_PREFIX = "_dot_"
# Above this many forward operations one backward pass serves both grad_output=None
# (run with 1) and a given grad_output: the generated code is half as long.
ONE_PASS_NODES = 5_000


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
    gates: dict[int, Node] = field(default_factory=dict)  # where-branch conditions
    order: list[Node] = field(default_factory=list)  # nodes with adjoints, f first
    # How to record `terms`: the pass run again (it finds every node it makes in the
    # graph already). Generated code never reads them, and a large program's would
    # be hundreds of thousands of objects the garbage collector traverses.
    record: Callable[[], dict[int, list[Contribution]]] | None = field(
        default=None, repr=False
    )
    _terms: dict[int, list[Contribution]] | None = field(default=None, repr=False)

    @property
    def terms(self) -> dict[int, list[Contribution]]:
        """Each node's contributions (the terms of its adjoint, in order), recorded
        on first use."""
        if self._terms is None:
            self._terms = self.record() if self.record is not None else {}
        return self._terms

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

    @functools.cached_property
    def forward_dependencies(self) -> dict[int, frozenset[int]]:
        """`dependencies` of the forward nodes (computed once)."""
        return dependencies(self.forward_nodes)

    def gradients(self, default: bool) -> dict[str, Node | None]:
        backward = self.default_backward if default else self.backward
        return {n: backward.gradient(self.input_nodes[n]) for n in self.wrt}

    # --- forward mode and second order (built on first use: `symgrad.forward`)

    @functools.cached_property
    def tangent_inputs(self) -> dict[str, Node]:
        """Each wrt input's tangent (jvp) or vector (hvp): an input node `_dot_x`."""
        return {n: self.graph.input(TANGENT_PREFIX + n) for n in self.wrt}

    def _tangent_seeds(self) -> dict[int, Node]:
        return {self.input_nodes[n].id: t for n, t in self.tangent_inputs.items()}

    @functools.cached_property
    def forward_tangents(self) -> dict[int, Node]:
        """Each forward node's tangent (absent: 0) for the wrt inputs' tangents."""
        from symgrad import forward

        return forward.push(
            self.graph,
            self.forward_nodes,
            self._tangent_seeds(),
            self.convention,
            self.forward_dependencies,
        )

    @property
    def jvp_output(self) -> Node | None:
        """The tangent of the value (None: 0) for the inputs' tangents."""
        return self.forward_tangents.get(self.output.id)

    @functools.cached_property
    def hvp_outputs(self) -> dict[str, Node | None]:
        """Each wrt input's Hessian-vector product (None: 0): the tangent of its
        gradient (upstream grad_output) when the inputs move along the vectors."""
        from symgrad import forward

        grads = self.gradients(default=False)
        targets = [g for g in grads.values() if g is not None]
        tangents = forward.push(
            self.graph,
            forward.useful(targets),
            self._tangent_seeds(),
            self.convention,
            dependencies(ancestors(targets)),
        )
        return {n: None if g is None else tangents.get(g.id) for n, g in grads.items()}

    @functools.cached_property
    def elementwise(self) -> bool:
        """Whether every forward step is elementwise (no reduction, no slice): then
        slices of the inputs give the slices of the value and of the gradients, which
        is what `threads=` of a generated module computes in parallel."""
        return not any(
            n.op in RESHAPING or (n.rule is not None and n.rule.reduction)
            for n in self.forward_nodes
        )

    @functools.cached_property
    def scalar_hessian(self) -> bool:
        """Whether the inputs may all be scalars, which the sparse Hessian needs: an
        expression that indexes (x[1:]) takes arrays."""
        return not any(n.op in RESHAPING for n in self.forward_nodes)

    @functools.cached_property
    def hessian_entries(self) -> dict[tuple[int, int], Node]:
        """The Hessian of sum(f) for scalar inputs: (i, j) -> node, i >= j, over the
        wrt inputs; absent entries are structurally zero (none where the inputs are
        arrays: `scalar_hessian`)."""
        from symgrad import forward

        if not self.scalar_hessian:
            return {}

        grads = list(self.gradients(default=True).values())
        nodes = ancestors([g for g in grads if g is not None])
        return forward.hessian_columns(
            self.graph,
            grads,
            [self.input_nodes[n] for n in self.wrt],
            self.convention,
            dependencies(nodes),
        )

    @functools.cached_property
    def hessian_sparsity(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(rows, columns) of the Hessian's structural nonzeros over the wrt inputs,
        both triangles, row-major: where `hessian_values` puts its entries."""
        pairs = set()
        for i, j in self.hessian_entries:
            pairs.add((i, j))
            pairs.add((j, i))
        ordered = sorted(pairs)
        return tuple(i for i, _ in ordered), tuple(j for _, j in ordered)

    def hessian_node(self, i: int, j: int) -> Node | None:
        """Entry (i, j) of the scalar inputs' Hessian (None: structurally zero)."""
        return self.hessian_entries.get((i, j) if i >= j else (j, i))

    def bindings(
        self,
        values: Mapping[str, Any],
        grad_output: Any = None,
        tangents: Mapping[str, Any] | None = None,
    ) -> dict[int, Any]:
        """Input values (converted as generated modules convert them) by node id,
        and with `tangents` each wrt input's tangent (or vector), as `_as_tangent`
        gives it the shape and dtype of its input."""
        from symgrad.evaluate import as_input, helper

        bound = {self.input_nodes[n].id: as_input(values[n]) for n in self.inputs}
        grad_node = self.graph.find_input(GRAD_OUTPUT)
        if grad_node is not None:
            import numpy as np

            seed = 1.0 if grad_output is None else np.asarray(grad_output)
            bound[grad_node.id] = seed
        if tangents is not None:
            as_tangent = helper("_as_tangent")
            for n, node in self.tangent_inputs.items():
                primal = bound[self.input_nodes[n].id]
                bound[node.id] = as_tangent(tangents[n], primal)
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

    # --- evaluated (the one evaluator), with the generated modules' conventions

    def jvp(
        self, values: Mapping[str, Any], tangents: Mapping[str, Any]
    ) -> tuple[Any, Any]:
        """The value and its tangent for the wrt inputs' tangents (forward mode)."""
        import numpy as np

        from symgrad import evaluate

        bound = self.bindings(values, tangents=tangents)
        out = self.jvp_output
        computed = evaluate.run(
            ancestors([self.output] + ([out] if out is not None else [])), bound
        )
        value = np.asarray(computed[self.output.id])
        tangent = 0.0 if out is None else computed[out.id]
        return value, evaluate.helper("_tangent_like")(tangent, value)

    def hvp(
        self,
        values: Mapping[str, Any],
        vectors: Mapping[str, Any],
        grad_output: Any = None,
    ) -> tuple[Any, dict[str, Any]]:
        """The value and, per wrt input, the Hessian of sum(f * grad_output) times
        the vectors (forward-over-reverse)."""
        import numpy as np

        from symgrad import evaluate

        bound = self.bindings(values, grad_output, tangents=vectors)
        outs = [o for o in self.hvp_outputs.values() if o is not None]
        computed = evaluate.run(ancestors([self.output, *outs]), bound)
        value = np.asarray(computed[self.output.id])
        grad_like = evaluate.helper("_grad_like")
        keep = (
            value,
            grad_output,
            *(bound[self.input_nodes[n].id] for n in self.inputs),
        )
        products = {}
        for n, node in self.hvp_outputs.items():
            product = 0.0 if node is None else computed[node.id]
            with np.errstate(all="ignore"):
                products[n] = grad_like(product, bound[self.input_nodes[n].id], keep)
        return value, products

    def hessian_values(self, values: Mapping[str, Any]) -> Any:
        """The Hessian's structural nonzeros at scalar inputs, in `hessian_sparsity`
        order (the module's `hessian_sparse`)."""
        import numpy as np

        from symgrad import evaluate

        bound = self.bindings(values)
        arrays = [bound[self.input_nodes[n].id] for n in self.wrt]
        if not self.scalar_hessian:
            raise ValueError(
                "hessian_sparse needs scalar inputs, and this expression indexes "
                "arrays: use hessian or hvp"
            )
        if not evaluate.helper("_all_scalars")(arrays):
            raise ValueError(
                "hessian_sparse needs scalar inputs (one element each): use hessian "
                "or hvp for arrays"
            )
        rows, columns = self.hessian_sparsity
        nodes = [self.hessian_node(i, j) for i, j in zip(rows, columns, strict=True)]
        computed = evaluate.run(ancestors([n for n in nodes if n is not None]), bound)
        dtype = np.result_type(*arrays) if arrays else np.float64
        return np.array(
            [np.reshape(computed[n.id], ()) for n in nodes if n is not None],  # type: ignore[union-attr]
            dtype=dtype,
        )


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

    def _wrt(self, items: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.program.wrt, items, strict=True))

    def jvp(self, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
        return self.program.jvp(self._values(primals), self._wrt(tangents))

    def hvp(
        self, primals: Sequence[Any], vectors: Sequence[Any], grad_output: Any = None
    ) -> tuple[Any, Any]:
        value, products = self.program.hvp(
            self._values(primals), self._wrt(vectors), grad_output
        )
        return value, tuple(products[n] for n in self.program.wrt)

    @property
    def HESSIAN_SPARSITY(self) -> tuple[Any, Any]:  # noqa: N802 (the module's name)
        import numpy as np

        rows, columns = self.program.hessian_sparsity
        return np.array(rows, dtype=np.intp), np.array(columns, dtype=np.intp)

    def hessian_sparse(self, *args: Any) -> Any:
        return self.program.hessian_values(self._values(args))

    def hessian_matrix(self, *args: Any) -> Any:
        from symgrad import evaluate

        values = self._values(args)
        arrays = [evaluate.as_input(values[n]) for n in self.program.wrt]
        if self.program.scalar_hessian and evaluate.helper("_all_scalars")(arrays):
            import numpy as np

            rows, columns = self.HESSIAN_SPARSITY
            return evaluate.helper("_hessian_from_sparse")(
                rows,
                columns,
                self.hessian_sparse(*args),
                len(arrays),
                np.result_type(*arrays),
            )
        primals = [evaluate.as_input(values[n]) for n in self.program.inputs]
        wrt = tuple(self.program.inputs.index(n) for n in self.program.wrt)
        return evaluate.helper("_hessian_by_hvp")(self.hvp, primals, wrt)

    def hessian(self, *args: Any) -> Any:
        from symgrad import evaluate

        values = self._values(args)
        arrays = [evaluate.as_input(values[n]) for n in self.program.wrt]
        return evaluate.helper("_hessian_blocks")(self.hessian_matrix(*args), arrays)


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
    deps = dependencies(forward)
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
    program = Program(
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
    # found above: kept, not walked again on first use (a large graph's walk is costly)
    program.forward_nodes = forward
    program.forward_dependencies = deps
    return program


def _needs_grad(forward: list[Node], wanted: set[int]) -> set[int]:
    needs: set[int] = set()
    for node in forward:
        if node.id in wanted:
            needs.add(node.id)
            continue
        for a in node.args:
            if a.id in needs:
                needs.add(node.id)
                break
    return needs


# Past this many inputs a node's set of inputs is not tracked (MANY): sets growing
# along a long sum would cost quadratic time and memory.
MAX_TRACKED_INPUTS = 64
MANY: frozenset[int] = frozenset({-1})  # "possibly any input"
# Operations whose result has a shape of their own, neither their argument's nor a
# reduction's (): it counts as an input of its own shape (-2 - the node's id).
RESHAPING = frozenset({"slice", "index", "unslice", "unindex"})
# The rows that reduce (`Rule.reduction`): their result depends on no input's shape.
REDUCTIONS = frozenset(rule.name for rule in registry.RULES if rule.reduction)


def dependencies(forward: list[Node]) -> dict[int, frozenset[int]]:
    """The inputs each node depends on elementwise (a reduction's result: none)."""
    deps: dict[int, frozenset[int]] = {}
    for node in forward:
        if node.op == "input":
            deps[node.id] = frozenset({node.id})
        elif node.op in ("const", "dtype") or node.op in REDUCTIONS:
            deps[node.id] = frozenset()
        elif node.op in RESHAPING:  # a shape of its own (x[1:] is not x's shape)
            deps[node.id] = frozenset({-2 - node.id})
        elif len(node.args) == 1:  # (the common cases first: as below)
            deps[node.id] = deps[node.args[0].id]
        elif len(node.args) == 2:
            a, b = deps[node.args[0].id], deps[node.args[1].id]
            if a is MANY or b is MANY:
                deps[node.id] = MANY
                continue
            if len(a) < len(b):
                a, b = b, a
            union = a if b <= a else a | b
            deps[node.id] = union if len(union) <= MAX_TRACKED_INPUTS else MANY
        else:
            parts = [deps[a.id] for a in node.args]
            if any(p is MANY for p in parts):
                deps[node.id] = MANY
                continue
            # the largest part when it holds the others (x**2, 100*x): no new set
            union = max(parts, key=len, default=frozenset())
            if not all(p <= union for p in parts):
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
    *,
    record: bool = False,
) -> Backward:
    """The adjoints for `seed`; with `record`, the terms of each (`Backward.terms`),
    else a way to record them on first use."""
    result = Backward(seed=seed)
    if record:
        result._terms = {}
    else:
        result.record = functools.partial(
            _recorded, graph, forward, output, seed, deps, needs, convention
        )
    if output.id not in needs:
        return result
    # each target's terms so far: one node, or a list of them in order
    pending: dict[int, Node | list[Node]] = {}
    recorded: dict[int, list[Contribution]] = {}
    # each target's contributions' where-branch gates: those with none (which make
    # the combined gate none) are only counted, not listed
    gated: dict[int, list[Node]] = {}
    ungated: set[int] = {output.id}
    apply = graph.apply
    for node in reversed(forward):
        nid = node.id
        if nid not in needs:
            continue
        if node is output:
            adjoint = seed
        else:
            found = pending.pop(nid, None)
            if found is None:
                continue
            if type(found) is list:
                adjoint = found[0]
                for term in found[1:]:
                    adjoint = apply("add", adjoint, term)
            else:
                adjoint = found
            if record:
                result.terms[nid] = recorded.pop(nid)
        result.adjoints[nid] = adjoint
        result.order.append(node)
        listed_gates = gated.pop(nid, None)
        gate = (
            None
            if nid in ungated or listed_gates is None
            else _combine_gates(graph, listed_gates)
        )
        if gate is not None:
            result.gates[nid] = gate
        args = node.args
        if node.op == "input" or not args:
            continue
        several = len(args) > 1
        where = node.op == "where"
        shape = deps[nid]
        for position, term in local_terms(graph, node, adjoint, needs, convention):
            target = args[position]
            branch_gate = gate
            if where and position in (1, 2):
                condition = args[0]
                if position == 2:
                    condition = apply("not", condition)
                branch_gate = (
                    condition if gate is None else apply("and", gate, condition)
                )
            elif gate is not None:
                term = apply("select", gate, term)
            if several and _may_broadcast(deps[target.id], shape):
                term = apply("unbroadcast", term, target, node)
                if branch_gate is not None:  # the gate, or-reduced to target's shape
                    branch_gate = apply("any_like", branch_gate, target)
            tid = target.id
            previous = pending.get(tid)
            if previous is None:
                pending[tid] = term
            elif type(previous) is list:
                previous.append(term)
            else:
                pending[tid] = [previous, term]
            if record:
                recorded.setdefault(tid, []).append(
                    Contribution(node, position, target, term)
                )
            if branch_gate is None:
                ungated.add(tid)
            else:
                gated.setdefault(tid, []).append(branch_gate)
    return result


def _recorded(
    graph: Graph,
    forward: list[Node],
    output: Node,
    seed: Node,
    deps: dict[int, frozenset[int]],
    needs: set[int],
    convention: str,
) -> dict[int, list[Contribution]]:
    """The terms of each adjoint of a pass made already, by making it again."""
    again = _backward(
        graph, forward, output, seed, deps, needs, convention, record=True
    )
    return again.terms


def _combine_gates(graph: Graph, gates: list[Node | None]) -> Node | None:
    """The gate of a sum of contributions: none if any contribution is ungated."""
    if None in gates:  # (a Node equals only itself)
        return None
    combined = gates[0]
    for g in gates[1:]:
        if g is not combined:
            combined = graph.apply("or", combined, g)  # type: ignore[arg-type]
    return combined
