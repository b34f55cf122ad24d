"""The expression graph: every operation exactly as the user wrote it, each once.

The parser builds this graph; the reverse program adds its adjoint nodes to the same
graph; one evaluator (`symgrad.evaluate`) computes any node, and the NumPy renderer
(`symgrad.numpy_code`) writes the same nodes as named lines. SymPy only ever sees a
copy for display (`to_sympy`): nothing it rewrites can change a value, a shape, a
dtype or a domain. `x/x` is a division here, nan at 0 and shaped like x.

A node is an operation (a registry row's name), its argument nodes, and for leaves a
value (`const`) or a name (`input`). Nodes are hash-consed: building the same operation
of the same arguments twice returns the first node, so a repeated subexpression is
computed once. Nodes are numbered in creation order, which is a topological order
(arguments first).

Three kinds of leaves and internal values:

- ``input``: a user's input (name), or the upstream gradient ``grad_output``;
- ``const``: a Python float or bool. Operations on constants only are folded by the
  evaluator's own kernels in float64 (as PyTorch computes with float64 0-d tensors),
  so `sigmoid(1)` is the float 0.7310585786300049 in generated code and, being a
  Python float, never changes an array's dtype;
- ``dtype``: the floating dtype of the inputs (their NumPy result type), which masks
  used as numbers are cast to: `(x > 0) * (x < 1)` is exact 0/1 in x's dtype.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from symgrad import registry

# Operations whose result is a mask (a boolean array).
MASK_OPS = frozenset(rule.name for rule in registry.RULES if rule.mask)


@dataclass(eq=False, slots=True)
class Node:
    """One operation of the graph (see the module docstring). Never changed once made
    (not frozen only because frozen dataclasses are slow to create)."""

    id: int
    op: str
    args: tuple[Node, ...] = ()
    value: float | bool | None = None  # for op == "const"
    name: str | None = None  # for op == "input"
    # For display only: a constant's exact form as the user wrote it (pi, 2/sqrt(pi));
    # not part of a node's identity, never used for a value.
    symbolic: Any = field(default=None, compare=False)

    @property
    def is_const(self) -> bool:
        return self.op == "const"

    @property
    def is_input(self) -> bool:
        return self.op == "input"

    @property
    def is_mask(self) -> bool:
        return self.op in MASK_OPS or (self.op == "const" and type(self.value) is bool)

    @property
    def rule(self) -> registry.Rule | None:
        return registry.BY_NAME.get(self.op)

    def __repr__(self) -> str:
        if self.op == "const":
            return f"Node({self.id}: {self.value!r})"
        if self.op == "input":
            return f"Node({self.id}: {self.name})"
        return f"Node({self.id}: {self.op}{tuple(a.id for a in self.args)})"


def _const_key(value: float | bool | None) -> tuple[str, object]:
    if value is None:  # a slice's missing bound (`x[1:]`)
        return ("none", None)
    if type(value) is bool:
        return ("bool", value)
    return ("float", struct.pack("<d", value))  # -0.0 and 0.0 differ; nan is one


@dataclass
class Graph:
    """A hash-consed graph of operations; nodes in creation (topological) order."""

    nodes: list[Node] = field(default_factory=list)
    _index: dict[tuple[object, ...], Node] = field(default_factory=dict, repr=False)
    _dtype: Node | None = field(default=None, repr=False)
    # Keep constants' exact forms for display (the parser; not the reverse program).
    symbolic_constants: bool = False
    _masks: set[int] = field(default_factory=set, repr=False)  # ids of mask nodes

    def _add(self, key: tuple[object, ...], **kwargs: object) -> Node:
        node = self._index.get(key)
        if node is None:
            node = Node(id=len(self.nodes), **kwargs)  # type: ignore[arg-type]
            self.nodes.append(node)
            self._index[key] = node
            if node.is_mask:
                self._masks.add(node.id)
        return node

    def input(self, name: str) -> Node:
        key = ("input", name)
        node = self._index.get(key)  # (found: no arguments built for `_add`)
        return node if node is not None else self._add(key, op="input", name=name)

    def find_input(self, name: str) -> Node | None:
        """The input node called `name`, if the graph has one."""
        return self._index.get(("input", name))

    def inputs(self) -> list[Node]:
        """The user's inputs: not grad_output, nor the derivative programs' own
        inputs (tangents, named with a leading underscore, which users cannot)."""
        return [
            n
            for n in self.nodes
            if n.op == "input" and n.name != GRAD_OUTPUT and not n.name.startswith("_")
        ]

    def const(self, value: float | bool | None, symbolic: Any = None) -> Node:
        if type(value) is not bool and value is not None:
            value = float(value)
        key = ("const", _const_key(value))
        node = self._index.get(key)  # (found: no arguments built for `_add`)
        if node is not None:
            return node
        return self._add(key, op="const", value=value, symbolic=symbolic)

    def dtype(self) -> Node:
        """The floating dtype of the inputs (one node, over every input so far)."""
        if self._dtype is None:
            args = tuple(self.inputs())
            self._dtype = self._add(
                ("dtype", *(a.id for a in args)), op="dtype", args=args
            )
        return self._dtype

    def apply(self, op: str, *args: Node) -> Node:
        """The node `op(*args)`: masks used as numbers are cast, constants folded."""
        masks = self._masks
        # plain loops and no helper calls: this runs once per operation of the
        # expression and of each derivative program built over it
        if masks:
            for a in args:
                if a.id in masks:
                    rule = registry.BY_NAME[op]
                    args = tuple(
                        self.as_number(b)
                        if b.id in masks and i not in rule.mask_args
                        else b
                        for i, b in enumerate(args)
                    )
                    break
        if (
            op in ("select", "where")
            and args[0].is_mask
            and args[1].op == "const"
            and args[1].value == 1.0
            and (op == "select" or (args[2].op == "const" and args[2].value == 0.0))
        ):
            # 1 where the mask holds, else 0: the mask as a number in the inputs'
            # dtype (one cast, not an int64 where and a cast)
            return self.as_number(args[0])
        for a in args:
            if a.op != "const":
                break
        else:
            if args:
                from symgrad.evaluate import fold

                value = fold(op, [a.value for a in args])  # type: ignore[misc]
                symbolic = None
                if self.symbolic_constants:
                    symbolic = _symbolic_constant(registry.BY_NAME[op], args, value)
                return self.const(value, symbolic)
        if len(args) == 2:
            key: tuple[object, ...] = (op, args[0].id, args[1].id)
        elif len(args) == 1:
            key = (op, args[0].id)
        else:
            key = (op, *[a.id for a in args])
        node = self._index.get(key)
        if node is None:  # `_add`, inlined
            nodes = self.nodes
            node = Node(len(nodes), op, args)
            nodes.append(node)
            self._index[key] = node
            if op in MASK_OPS:  # (`Node.is_mask` of an operation)
                masks.add(node.id)
        if op == "where" and args[1].op == "const" and args[2].op == "const":
            # both branches numbers: the result takes the inputs' dtype, as a mask does
            return self.apply("float", node, self.dtype())
        return node

    def as_number(self, node: Node) -> Node:
        """A mask as exact 0/1 in the inputs' dtype (a number stays as it is)."""
        if not node.is_mask:
            return node
        if node.is_const:
            return self.const(1.0 if node.value else 0.0)
        return self.apply("float", node, self.dtype())


# Constants up to this size keep an exact form for display (see _symbolic_constant).
SMALL_EXACT = 100.0


def _symbolic_constant(
    rule: registry.Rule, args: tuple[Node, ...], value: float | bool
) -> Any:
    """The exact SymPy form of an operation on constants (display only), or None."""
    import sympy as sp

    forms = []
    for a in args:
        if type(a.value) is not bool and not abs(a.value) <= SMALL_EXACT:  # type: ignore[arg-type]
            return None
        if a.symbolic is not None:
            forms.append(a.symbolic)
        elif type(a.value) is bool:
            forms.append(sp.S.One if a.value else sp.S.Zero)
        else:
            # only small numbers (checked above): SymPy evaluates digamma(10**6) or
            # 9**9**9 exactly, at great cost; larger constants show as their float
            v = a.value
            forms.append(sp.Integer(int(v)) if v.is_integer() else sp.Float(v))
    try:
        form = rule.to_sympy(*forms)
    except (ArithmeticError, ValueError, TypeError):
        return None
    if form.has(sp.zoo, sp.I, sp.nan, sp.oo, -sp.oo, sp.AccumBounds):
        return None
    if form.is_Float:
        return None  # a float says no more than the value (0.5 + 0.5 is 1)
    if any(type(f) not in registry.BY_CLASS for f in form.atoms(sp.Function)):
        return None  # atan2(y, -inf) is 2*pi*Heaviside(y) - pi in SymPy
    try:  # SymPy's floats have no exponent limit: 1e-300 * 1e-300 is not 0 there
        exact = float(form)
    except (TypeError, ValueError):
        return None
    if not math.isclose(exact, float(value), rel_tol=1e-12) or (form == 0) != (
        value == 0
    ):
        return None
    return form


# The name of the upstream gradient's input node in a reverse program.
GRAD_OUTPUT = "grad_output"


def ancestors(outputs: Iterable[Node]) -> list[Node]:
    """Every node the outputs depend on, themselves included, in topological order."""
    seen: dict[int, Node] = {}
    stack = list(outputs)
    pop, push = stack.pop, stack.extend
    while stack:
        node = pop()
        if node.id in seen:  # (arguments are pushed unchecked: checked here)
            continue
        seen[node.id] = node
        push(node.args)
    return [seen[i] for i in sorted(seen)]


def walk_consumers(nodes: list[Node]) -> dict[int, list[Node]]:
    """For each node id, the nodes (among `nodes`) that use it as an argument."""
    users: dict[int, list[Node]] = {}
    for node in nodes:
        for arg in node.args:
            users.setdefault(arg.id, []).append(node)
    return users


def literal(value: float | bool | None) -> str:
    """A constant as Python source (generated code and step listings)."""
    if value is None:
        return "None"
    if type(value) is bool:
        return repr(value)
    if math.isnan(value):
        return "np.nan"
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    if value.is_integer() and abs(value) < 2**53:
        return (
            str(int(value))
            if not (value == 0 and math.copysign(1, value) < 0)
            else "-0.0"
        )
    return repr(value)
