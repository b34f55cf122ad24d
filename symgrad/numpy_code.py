"""NumPy code for a reverse program: one named line per node of the graph.

Every forward node becomes a line `_v<k> = ...`, every adjoint node a line
`_g<k> = ...`, spelled with the registry row's NumPy spelling (the same spelling the
evaluator runs, `symgrad.evaluate`). Inputs keep their names, constants are literals
(Python floats, which never change an array's dtype), and the inputs' floating dtype,
where masks are used as numbers, is `_dtype`. Every name the code defines starts with
an underscore, so no input name (which cannot) collides with one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from symgrad import evaluate, registry
from symgrad.graph import GRAD_OUTPUT, Node, ancestors, literal
from symgrad.reverse import Program

DTYPE = "_dtype"
_HELPER_CALL = re.compile(r"(?<![\w.])(_[a-z]\w*)\(")


class Line(NamedTuple):
    """One line of code: `name = code`, or a statement of its own (no name)."""

    name: str
    code: str
    comment: str = ""


# A Line, or its fields as a plain tuple (`lower(..., tuples=True)`): the garbage
# collector stops tracking a tuple of strings, so a large module's hundreds of
# thousands of lines are not traversed at every full collection while it is made.
LineLike = tuple[str, str, str]


@dataclass
class NumpyProgram:
    """The pieces a module template lays out."""

    inputs: tuple[str, ...]
    forward: list[LineLike]
    backward: list[LineLike]  # with the upstream gradient grad_output
    default_backward: list[LineLike] | None  # grad_output=None: 1 folded in
    value: str  # the forward line (or input/literal) holding the value
    gradients: dict[str, str]  # input name -> code of its (unshaped) gradient
    default_gradients: dict[str, str]
    helpers: tuple[str, ...]  # runtime helpers used (`_erf`)
    wrt: tuple[str, ...] = ()  # the inputs with gradients, tangents and vectors
    # forward mode: tangent lines after the forward ones, and the value's tangent
    jvp: list[LineLike] = field(default_factory=list)
    jvp_tangent: str = "0.0"
    # second order (None unless asked for): forward-over-reverse with grad_output ...
    hvp: list[LineLike] | None = None
    hvp_products: dict[str, str] = field(default_factory=dict)
    # ... and the scalar inputs' Hessian: its lines, entries and where they go
    hessian: list[LineLike] | None = None
    hessian_entries: list[str] = field(default_factory=list)
    hessian_sparsity: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    scalar_hessian: bool = True  # False: the inputs are arrays (x[1:]), no sparse path
    elementwise: bool = False  # no reduction, no slice: threads= slices the inputs


def spell(node: Node, names: dict[int, str]) -> str:
    """The NumPy code of one node, its arguments by name or literal."""
    codes = [code_of(a, names) for a in node.args]
    if node.op in ("unslice", "unindex"):  # bounds as written: None, -1
        codes = codes[:2] + [literal(a.value) for a in node.args[2:]]  # type: ignore[arg-type]
    if node.op in ("slice", "index"):  # x[1:None:None] is written x[1:], x[(-1)] x[-1]
        b = ["" if a.value is None else literal(a.value) for a in node.args[1:]]  # type: ignore[arg-type]
        if node.op == "index":
            return f"{codes[0]}[{b[0]}]"
        return f"{codes[0]}[{b[0]}:{b[1]}{':' + b[2] if b[2] else ''}]"
    return evaluate.spelling(registry.BY_NAME[node.op], len(codes)).format(*codes)


def code_of(node: Node, names: dict[int, str]) -> str:
    if node.op == "const":
        text = literal(node.value)  # type: ignore[arg-type]
        return f"({text})" if text.startswith("-") else text
    return names[node.id]


_SHAPED = frozenset({"slice", "index", "unslice", "unindex"})  # bounds as written


class _Speller:
    """`spell` for the many lines of one program: each operation's spelling and each
    constant's literal are made once, not once per line (a large program has
    hundreds of thousands of lines, most of a handful of kinds)."""

    def __init__(self) -> None:
        self._spellings: dict[tuple[str, int], str] = {}
        self._constants: dict[int, str] = {}

    def spell(self, node: Node, names: dict[int, str]) -> str:
        """What `spell(node, names)` gives."""
        op = node.op
        if op in _SHAPED:
            return spell(node, names)
        args = node.args
        count = len(args)
        spelling = self._spellings.get((op, count))
        if spelling is None:
            spelling = evaluate.spelling(registry.BY_NAME[op], count)
            self._spellings[op, count] = spelling
        get = names.get  # (a name is never empty: none is a constant's)
        if count == 2:
            a, b = args
            return spelling.format(
                get(a.id) or self._constant(a, names),
                get(b.id) or self._constant(b, names),
            )
        if count == 1:
            return spelling.format(get(args[0].id) or self._constant(args[0], names))
        return spelling.format(*[get(a.id) or self._constant(a, names) for a in args])

    def _constant(self, node: Node, names: dict[int, str]) -> str:
        """`code_of` a node without a name: a constant (its literal, made once)."""
        code = self._constants.get(node.id)
        if code is None:
            code = self._constants[node.id] = code_of(node, names)
        return code


def names(program: Program, *, default: bool = True) -> dict[int, str]:
    """The generated code's name of each node it names, by node id.

    Inputs keep their names; forward lines are `_v1, _v2, ...` and the inputs' dtype is
    `_dtype`; the lines of the backward pass are `_g1, _g2, ...` (`default`: the pass
    with grad_output=None, the constant 1 folded in; else the one with grad_output).
    Constants have no name (they are literals), nor do adjoints no line computes.
    """
    return _backward_names(program, _forward_names(program), default)


def _forward_names(program: Program) -> dict[int, str]:
    named = {node.id: name for name, node in program.input_nodes.items()}
    count = 0
    for node in program.forward_nodes:
        if node.op in ("input", "const"):
            continue
        if node.op != "dtype":
            count += 1
        named[node.id] = DTYPE if node.op == "dtype" else f"_v{count}"
    return named


def _backward_nodes(
    program: Program, known: dict[int, str], default: bool
) -> list[Node]:
    """The nodes the backward pass computes (and grad_output), in order."""
    targets = [g for g in program.gradients(default).values() if g is not None]
    return [n for n in _beyond(targets, known) if n.op != "const"]


def _beyond(targets: list[Node], known: dict[int, str]) -> list[Node]:
    """The ancestors of `targets` that are not `known`, in order: `ancestors`
    without walking through the known nodes, which are the forward ones (`named`),
    whose arguments are all known or constants."""
    seen: dict[int, Node] = {}
    stack = list(targets)
    pop, push = stack.pop, stack.extend
    while stack:
        node = pop()
        if node.id in seen or node.id in known:
            continue
        seen[node.id] = node
        push(node.args)
    return [seen[i] for i in sorted(seen)]


def _backward_names(
    program: Program, known: dict[int, str], default: bool
) -> dict[int, str]:
    return _named_backward(_backward_nodes(program, known, default), known)


def _named_backward(nodes: list[Node], known: dict[int, str]) -> dict[int, str]:
    """`known` and the names of the backward pass's `nodes` (`_backward_nodes`)."""
    named = dict(known)
    count = 0
    for node in nodes:
        if node.op == "input":  # the upstream gradient
            assert node.name == GRAD_OUTPUT
            named[node.id] = GRAD_OUTPUT
            continue
        count += 1
        named[node.id] = DTYPE if node.op == "dtype" else f"_g{count}"
    return named


def _section(
    targets: list[Node],
    known: dict[int, str],
    prefix_of: Callable[[Node], str],
    speller: _Speller | None = None,
) -> tuple[list[LineLike], dict[int, str]]:
    """Lines computing `targets` from the `known` names: each new node named by its
    kind's prefix and a count (`_t1, _t2, ...`), inputs by their own names."""
    local = dict(known)
    counts: dict[str, int] = {}
    lines: list[LineLike] = []
    spelled = (speller or _Speller()).spell
    for node in _beyond(targets, known):
        if node.id in local or node.op == "const":
            continue
        if node.op == "input":  # grad_output, a tangent `_dot_x`
            local[node.id] = node.name  # type: ignore[assignment]
            continue
        if node.op == "dtype":
            name = DTYPE
        else:
            prefix = prefix_of(node)
            counts[prefix] = counts.get(prefix, 0) + 1
            name = f"{prefix}{counts[prefix]}"
        local[node.id] = name
        lines.append((name, spelled(node, local), ""))
    return lines, local


def _second_order(
    program: Program, named: dict[int, str], speller: _Speller
) -> dict[str, Any]:
    """The hvp and Hessian lines (`_g` backward, `_t` tangents, `_h` Hessian)."""
    backward = {n.id for n in ancestors(list(program.backward.adjoints.values()))}

    def hvp_kind(node: Node) -> str:
        return "_g" if node.id in backward else "_t"

    products = {n: p for n, p in program.hvp_outputs.items() if p is not None}
    hvp, hvp_names = _section(list(products.values()), named, hvp_kind, speller)
    default = {
        n.id
        for n in ancestors(
            [g for g in program.gradients(default=True).values() if g is not None]
        )
    }

    def hessian_kind(node: Node) -> str:
        return "_g" if node.id in default else "_h"

    rows, columns = program.hessian_sparsity
    entries = [program.hessian_node(i, j) for i, j in zip(rows, columns, strict=True)]
    hessian, hessian_names = _section(
        [e for e in entries if e is not None], named, hessian_kind, speller
    )
    return {
        "hvp": hvp,
        "hvp_products": {
            n: code_of(products[n], hvp_names) if n in products else "0.0"
            for n in program.wrt
        },
        "hessian": hessian,
        "hessian_entries": [
            code_of(e, hessian_names)  # type: ignore[arg-type]
            for e in entries
        ],
        "hessian_sparsity": (rows, columns),
        "scalar_hessian": program.scalar_hessian,
    }


def lower(program: Program, order: int = 1, *, tuples: bool = False) -> NumpyProgram:
    """The program as named NumPy lines: forward, backward for both seeds, the
    tangents (jvp), and with `order` 2 the hvp and Hessian lines. Each line is a
    `Line`, or with `tuples` the same fields as a plain tuple (`LineLike`)."""
    named = _forward_names(program)
    spelled = (speller := _Speller()).spell
    forward: list[LineLike] = [
        (named[n.id], spelled(n, named), "")
        for n in program.forward_nodes
        if n.op not in ("input", "const")
    ]

    def backward_lines(default: bool) -> tuple[list[LineLike], dict[str, str]]:
        nodes = _backward_nodes(program, named, default)
        local = _named_backward(nodes, named)
        lines = [(local[n.id], spelled(n, local), "") for n in nodes if n.op != "input"]
        codes = {
            n: ("0.0" if g is None else code_of(g, local))
            for n, g in program.gradients(default).items()
        }
        return lines, codes

    backward, gradients = backward_lines(False)
    if program.default_backward is program.backward:  # one pass, run with 1
        default_backward, default_gradients = None, gradients
    else:
        default_backward, default_gradients = backward_lines(True)
    tangent = program.jvp_output
    jvp, jvp_names = _section(
        [] if tangent is None else [tangent], named, _tangent, speller
    )
    second = _second_order(program, named, speller) if order >= 2 else {}
    calls = _HELPER_CALL.findall
    used = {
        m
        for line in forward
        + backward
        + (default_backward or [])
        + jvp
        + second.get("hvp", [])
        + second.get("hessian", [])
        if "(" in line[1]  # (a helper's call has one)
        for m in calls(line[1])
    }
    if not tuples:  # Line objects
        forward, backward, jvp = _lines(forward), _lines(backward), _lines(jvp)
        if default_backward is not None:
            default_backward = _lines(default_backward)
        for key in ("hvp", "hessian"):
            if second.get(key):
                second[key] = _lines(second[key])
    return NumpyProgram(
        inputs=program.inputs,
        forward=forward,
        backward=backward,
        default_backward=default_backward,
        value=code_of(program.output, named),
        gradients=gradients,
        default_gradients=default_gradients,
        helpers=tuple(sorted(used)),
        wrt=program.wrt,
        jvp=jvp,
        jvp_tangent="0.0" if tangent is None else code_of(tangent, jvp_names),
        elementwise=program.elementwise,
        **second,
    )


def _lines(lines: list[LineLike]) -> list[LineLike]:
    return [Line._make(line) for line in lines]


def _tangent(node: Node) -> str:
    return "_t"
