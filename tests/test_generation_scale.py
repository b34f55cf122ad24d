"""Generation at scale (issue 7): the shortcuts a large expression takes give what the
plain way gives.

A long flat sum is parsed piece by piece, its inputs guessed from the text first; the
lines of a module are lowered as plain tuples; an adjoint's terms are recorded only
when read; forward mode unions the tangents' shapes lazily. Each is compared here with
the plain way, on expressions that exercise it.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad import derivation, forward, numpy_code, parse
from symgrad.errors import SymgradError


def _graph(parsed: parse.Parsed) -> list[tuple[object, ...]]:
    """Every node of a parsed graph: id, operation, argument ids, value, name."""
    return [
        (n.id, n.op, tuple(a.id for a in n.args), repr(n.value), n.name)
        for n in parsed.graph.nodes
    ]


LONG = [
    # a sum of 1,200 terms: masks (the inputs' dtype made mid-way), where with two
    # numbers, constants, calls, parenthesized sums where a piece starts
    " + ".join(
        f"(x{i % 37} > 0)"
        if i % 97 == 0
        else f"where(x{i % 11} > 1, 2, 3)"
        if i % 89 == 0
        else f"(x{i % 5} - y)"
        if i % 400 == 0
        else f"100*(x{(i + 1) % 50} - x{i % 50}**2)**2 + sin(x{i % 7})*pi"
        for i in range(1_200)
    ),
    " - ".join(f"(a{i % 13} - b)" for i in range(900)),
    " * ".join(f"(x{i % 9} + 1)" for i in range(1_000)),
    " / ".join(f"x{i % 9}" for i in range(801)),
]


@pytest.mark.parametrize("text", LONG, ids=["sum", "differences", "product", "ratio"])
def test_a_long_sum_parsed_in_pieces_is_the_whole_trees_graph(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse._pieces(parse._rewrite_caret_power(text)[0]) is not None
    in_pieces = parse.parse(text)
    # a guess of the inputs that is wrong: the whole tree is parsed after all
    monkeypatch.setattr(parse, "_guess_inputs", lambda source: ["_none"])
    guessed_wrong = parse.parse(text)
    monkeypatch.undo()
    monkeypatch.setattr(parse, "_parse_in_pieces", lambda *args: None)
    whole = parse.parse(text)
    for other in (guessed_wrong, whole):
        assert in_pieces.inputs == other.inputs
        assert _graph(in_pieces) == _graph(other)
        assert in_pieces.output.id == other.output.id


@pytest.mark.parametrize(
    "text",
    [
        " + ".join(f"x{i}" for i in range(1_000)).replace("x500 ", "foo(x500) "),
        " + ".join(f"x{i}" for i in range(1_000)).replace("x9 ", "norm(x9, 3) "),
        " + ".join(f"x{i}" for i in range(1_000)).replace("x9 ", "norm(x9, 3) ")
        + " + foo(x)",
        " + ".join(f"x{i}" for i in range(1_000)).replace("x9 ", "foo(x9) ") + " + )",
        " + ".join(f"x{i}" for i in range(1_000)) + " # no",
        " + ".join(["x"] * 800 + ["sin(" * 99 + "x" + ")" * 99]),
    ],
    ids=[
        "unknown",
        "build-error",
        "check-before-build",
        "syntax-first",
        "comment",
        "deep",
    ],
)
def test_a_long_sum_in_pieces_raises_what_the_whole_tree_raises(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SymgradError) as in_pieces:
        parse.parse(text)
    monkeypatch.setattr(parse, "_parse_in_pieces", lambda *args: None)
    with pytest.raises(SymgradError) as whole:
        parse.parse(text)
    assert str(in_pieces.value) == str(whole.value)
    assert in_pieces.value.column == whole.value.column


def test_lines_as_tuples_are_the_lines() -> None:
    program = symgrad.derive("sin(x*y) + where(x > 0, x**2, -y) + sum(x[1:])").program
    lines = numpy_code.lower(program, 2)
    tuples = numpy_code.lower(program, 2, tuples=True)
    for field in ("forward", "backward", "default_backward", "jvp", "hvp", "hessian"):
        as_lines, as_tuples = getattr(lines, field), getattr(tuples, field)
        assert all(type(line) is numpy_code.Line for line in as_lines or [])
        assert all(type(line) is tuple for line in as_tuples or [])
        assert [tuple(line) for line in as_lines or []] == list(as_tuples or [])


def test_adjoint_terms_are_recorded_as_the_pass_makes_them() -> None:
    program = symgrad.derive("where(x > 0, sqrt(x)*y, 1/y) + x*y + max(x, y)").program
    graph_size = len(program.graph.nodes)
    backward = program.default_backward
    assert backward._terms is None  # not recorded by the pass itself
    recorded = backward.terms
    assert len(program.graph.nodes) == graph_size  # every node was there
    for node in backward.order:
        if node is program.output:
            continue
        terms = [c.term for c in recorded[node.id]]
        adjoint = terms[0]
        for term in terms[1:]:
            adjoint = program.graph.apply("add", adjoint, term)
        assert adjoint is backward.adjoints[node.id]
        assert all(c.target is node for c in recorded[node.id])


def test_tangent_shapes_along_a_long_sum_with_a_reduction() -> None:
    """A long sum with a reduction keeps the tangents' shape covers (lazily): the
    jvp agrees with finite differences of the evaluator."""
    text = "sum(x)*y0 + " + " + ".join(f"y{i}*x" for i in range(300))
    d = symgrad.derive(text)
    rng = np.random.default_rng(0)
    values = {"x": rng.normal(size=4), **{f"y{i}": rng.normal() for i in range(300)}}
    tangents = {n: rng.normal(size=np.shape(values[n])) for n in d.program.wrt}
    _, tangent = d.program.jvp(values, tangents)
    eps = 1e-6
    plus = {n: values[n] + eps * tangents[n] for n in values}
    minus = {n: values[n] - eps * tangents[n] for n in values}
    numeric = (
        d.program.evaluate(plus, grads=False)[d.program.output.id]
        - d.program.evaluate(minus, grads=False)[d.program.output.id]
    ) / (2 * eps)
    np.testing.assert_allclose(tangent, numeric, rtol=1e-6, atol=1e-6)


def test_cover_unions_as_frozensets() -> None:
    a = forward._Cover(frozenset({1, 2}))
    b = forward._Cover(frozenset({3}))
    assert forward._Cover.union([None, a]) is a
    both = forward._Cover.union([a, b, a])
    assert both is not None and both.items() == frozenset({1, 2, 3})
    chain = a
    for i in range(10, 20_000):  # as deep as a long sum: no recursion
        chain = forward._Cover.union([chain, forward._Cover(frozenset({i}))])
    assert chain.items() == frozenset({1, 2, *range(10, 20_000)})
    assert forward._Cover.union([]) is None


def test_docstring_names_the_inputs_up_to_the_threshold() -> None:
    many = derivation.DOC_INPUTS + 1
    text = " + ".join(f"x{i}" for i in range(many))
    source = symgrad.derive(text).module_source()
    doc = source.split('"""')[1]
    assert f"f(x0, x1, x2, x3, x4, x5, ... ({many:,} inputs: see INPUTS))" in doc
    assert f"x{many - 1}" not in doc.split("Value:")[1]
    text = " + ".join(f"x{i}" for i in range(derivation.DOC_INPUTS))
    doc = symgrad.derive(text).module_source().split('"""')[1]
    names = ", ".join(f"x{i}" for i in range(derivation.DOC_INPUTS))
    assert f"f({names})" in " ".join(doc.split())
