"""Dead temporaries written into (`out=_spare(...)`): a module's results are bit for bit
those of the same module without reuse (every temporary kept), and nothing the caller
holds (inputs, grad_output, tangents, vectors, an earlier call's results) is written
into, for random expressions of the whole grammar, broadcast shapes and float32."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
from expression_strategies import arrays, expressions, grad_outputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad
from symgrad.errors import SymgradError

FAMILIES = (((3,),), ((2, 3), (3,)), ((2, 3), (3,), ()), ((1, 3), (2, 1)))


def _module(source: str) -> types.ModuleType:
    module = types.ModuleType("inplace")
    exec(compile(source, "<generated>", "exec"), module.__dict__)
    return module


def _equal(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


@settings(
    max_examples=int(os.environ.get("SYMGRAD_INPLACE_EXAMPLES") or 150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_reuse_changes_no_number_and_writes_nothing_the_caller_holds(data) -> None:
    text = data.draw(expressions(), label="expression")
    try:
        derivation = symgrad.derive(text)
        source = derivation.module_source(order=2)
    except (SymgradError, ValueError):
        return
    reusing = _module(source)
    keeping = _module(derivation.module_source(order=2, free_early=False))
    dtype = data.draw(st.sampled_from((np.float64, np.float32)), label="dtype")
    family = data.draw(st.sampled_from(FAMILIES), label="shapes")
    # arrays of their own (copies, not views), as a caller's usually are: a module
    # could write into those
    values = [
        data.draw(arrays(data.draw(st.sampled_from(family)), dtype), label=n).copy()
        for n in reusing.INPUTS
    ]
    shape = np.broadcast_shapes(*(v.shape for v in values))
    upstream = data.draw(grad_outputs(shape, np.dtype(dtype)), label="grad_output")
    if upstream is not None:
        upstream = upstream.copy()
    tangents = [
        np.linspace(-1, 1, v.size).astype(dtype).reshape(v.shape).copy() for v in values
    ]
    held = [v.copy() for v in values]
    held_upstream = None if upstream is None else upstream.copy()
    held_tangents = [t.copy() for t in tangents]

    first = reusing.value_and_grad(*values, grad_output=upstream)
    first_copy = (first[0].copy(), [g.copy() for g in first[1]])
    want = keeping.value_and_grad(*values, grad_output=upstream)
    _equal(first[0], want[0])
    for got, expected in zip(first[1], want[1], strict=True):
        _equal(got, expected)
    _equal(reusing.forward(*values), keeping.forward(*values))
    jvp, jvp_want = reusing.jvp(values, tangents), keeping.jvp(values, tangents)
    _equal(jvp[0], jvp_want[0])
    _equal(jvp[1], jvp_want[1])
    hvp = reusing.hvp(values, tangents, grad_output=upstream)
    hvp_want = keeping.hvp(values, tangents, grad_output=upstream)
    for got, expected in zip(hvp[1], hvp_want[1], strict=True):
        _equal(got, expected)
    # a second call computes the same and leaves the first call's results alone
    again = reusing.value_and_grad(*values, grad_output=upstream)
    _equal(again[0], first_copy[0])
    _equal(first[0], first_copy[0])
    for got, before, earlier in zip(again[1], first_copy[1], first[1], strict=True):
        _equal(got, before)
        _equal(earlier, before)
    for value, before in zip(values, held, strict=True):
        _equal(value, before)
    for tangent, before in zip(tangents, held_tangents, strict=True):
        _equal(tangent, before)
    if upstream is not None:
        _equal(upstream, held_upstream)


def test_a_dead_temporary_is_written_into() -> None:
    """The rewrite happens (so the property above tests something): the logistic
    loss's backward pass divides into the temporary 1 + exp(z)."""
    source = symgrad.derive("log(1 + exp(-y*(w*x + b)))").module_source()
    assert "np.divide(1, _v6, out=_spare(_v6, 1))" in source
    x = np.linspace(-2, 2, 7)
    module = _module(source)
    value, grads = module.value_and_grad(np.sign(x), 0.7, x, -0.3)
    assert np.isfinite(value).all() and all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    "text",
    [
        "x*y + sin(z)",  # grad_output goes unchanged to x*y's partials
        "x + y + z",
        "exp(x) * y - z",
        "-(x * y) / z",
        "log(1 + exp(-y*(x*z + 1)))",
        "where(x > 0, y, z) * x",
        "clip(x, y, z) * 2",
        # the upstream of w*x + b is summed to both: each sum may be that upstream
        "log(1 + exp(-y*(w*x + b)))",
    ],
)
def test_what_the_caller_holds_is_never_written_into(text: str) -> None:
    derivation = symgrad.derive(text)
    reusing = _module(derivation.module_source(order=2))
    keeping = _module(derivation.module_source(order=2, free_early=False))
    rng = np.random.default_rng(5)
    for shapes in (((4, 3), (4, 3), (4, 3)), ((4, 3), (3,), (4, 1))):
        # arrays of their own, an input's shape chosen by its place
        values = [
            rng.standard_normal(shapes[i % 3]) for i in range(len(reusing.INPUTS))
        ]
        upstream = rng.standard_normal((4, 3))
        held = [v.copy() for v in values] + [upstream.copy()]
        got = reusing.value_and_grad(*values, grad_output=upstream)
        want = keeping.value_and_grad(*values, grad_output=upstream)
        _equal(got[0], want[0])
        for a, b in zip(got[1], want[1], strict=True):
            _equal(a, b)
        hvp = reusing.hvp(values, values, grad_output=upstream)
        for a, b in zip(
            hvp[1], keeping.hvp(values, values, grad_output=upstream)[1], strict=True
        ):
            _equal(a, b)
        for value, before in zip([*values, upstream], held, strict=True):
            _equal(value, before)
