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
from dataclasses import dataclass

from symgrad import evaluate, registry
from symgrad.graph import GRAD_OUTPUT, Node, ancestors, literal
from symgrad.reverse import Program

DTYPE = "_dtype"
_HELPER_CALL = re.compile(r"(?<![\w.])(_[a-z]\w*)\(")


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
    backward: list[Line]  # with the upstream gradient grad_output
    default_backward: list[Line] | None  # grad_output=None: the constant 1 folded in
    value: str  # the forward line (or input/literal) holding the value
    gradients: dict[str, str]  # input name -> code of its (unshaped) gradient
    default_gradients: dict[str, str]
    helpers: tuple[str, ...]  # runtime helpers used (`_erf`)


def spell(node: Node, names: dict[int, str]) -> str:
    """The NumPy code of one node, its arguments by name or literal."""
    codes = [code_of(a, names) for a in node.args]
    return evaluate.spelling(registry.BY_NAME[node.op], len(codes)).format(*codes)


def code_of(node: Node, names: dict[int, str]) -> str:
    if node.op == "const":
        text = literal(node.value)  # type: ignore[arg-type]
        return f"({text})" if text.startswith("-") else text
    return names[node.id]


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
    return [n for n in ancestors(targets) if n.id not in known and n.op != "const"]


def _backward_names(
    program: Program, known: dict[int, str], default: bool
) -> dict[int, str]:
    named = dict(known)
    count = 0
    for node in _backward_nodes(program, known, default):
        if node.op == "input":  # the upstream gradient
            assert node.name == GRAD_OUTPUT
            named[node.id] = GRAD_OUTPUT
            continue
        count += 1
        named[node.id] = DTYPE if node.op == "dtype" else f"_g{count}"
    return named


def lower(program: Program) -> NumpyProgram:
    """The program as named NumPy lines: forward, and backward for both seeds."""
    named = _forward_names(program)
    forward = [
        Line(named[n.id], spell(n, named))
        for n in program.forward_nodes
        if n.op not in ("input", "const")
    ]

    def backward_lines(default: bool) -> tuple[list[Line], dict[str, str]]:
        local = _backward_names(program, named, default)
        lines = [
            Line(local[n.id], spell(n, local))
            for n in _backward_nodes(program, named, default)
            if n.op != "input"
        ]
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
    used = {
        m
        for line in forward + backward + (default_backward or [])
        for m in _HELPER_CALL.findall(line.code)
    }
    return NumpyProgram(
        inputs=program.inputs,
        forward=forward,
        backward=backward,
        default_backward=default_backward,
        value=code_of(program.output, named),
        gradients=gradients,
        default_gradients=default_gradients,
        helpers=tuple(sorted(used)),
    )
