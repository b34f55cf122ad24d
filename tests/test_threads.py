"""`threads=` of a generated module: slices of large inputs computed by a pool of
threads give the one-thread value and gradients (bit for bit, but for the gradient of an
input broadcast along the sliced axis, a sum of the slices' sums), for random
expressions of the whole grammar at special points, float32 and broadcast shapes; and
the threaded results agree with PyTorch on the string as written."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from conftest import compiled
from expression_strategies import SHAPE_FAMILIES, arrays, expressions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad
from symgrad.errors import SymgradError
from symgrad.oracles import torch_value_and_grad
from symgrad.parse import parse

BIG = 2**17  # the size from which a module slices its inputs


def _module(text: str):
    return compiled(symgrad.derive(text))


def _widened(values: dict[str, np.ndarray], factor: int) -> dict[str, np.ndarray]:
    """Each input repeated `factor` times along its last axis (an axis of length 1, or
    a scalar, stays): the shapes still broadcast, and the value has >= BIG elements."""
    out = {}
    for name, value in values.items():
        if value.ndim and value.shape[-1] > 1:
            value = np.tile(value, (1,) * (value.ndim - 1) + (factor,))
        out[name] = value
    return out


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def _close_sum(got: np.ndarray, want: np.ndarray) -> None:
    """A gradient summed over slices: the one-thread sum up to rounding (where the sum
    is so large that the order decides an overflow, it is not compared)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    tame = np.isfinite(want) & (np.abs(want) < np.finfo(want.dtype).max / 1e6)
    rtol = 1e-4 if want.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(got[tame], want[tame], rtol=rtol, atol=0)
    wild = ~tame & ~np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got[wild]), False)


def _check_threads(module, values: dict[str, np.ndarray], grad_output) -> None:
    args = [values[n] for n in module.INPUTS]
    value, grads = module.value_and_grad(*args, grad_output=grad_output)
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    axis = max(range(len(shape)), key=lambda i: shape[i]) if shape else 0
    for threads in (2, 3):
        v, g = module.value_and_grad(*args, grad_output=grad_output, threads=threads)
        _same(v, value)
        for name, got, want in zip(module.WRT, g, grads, strict=True):
            a = values[name]
            at = axis - (len(shape) - a.ndim)
            if at >= 0 and a.shape[at] == shape[axis]:
                _same(got, want)  # sliced: the same elements, computed alike
            else:
                _close_sum(got, want)
        _same(module.forward(*args, threads=threads), module.forward(*args))


@settings(
    max_examples=int(os.environ.get("SYMGRAD_THREADS_EXAMPLES") or 40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_expressions_threaded_equal_one_thread(data) -> None:
    text = data.draw(expressions(), label="expression")
    try:
        module = _module(text)
    except (SymgradError, ValueError):  # a constant too large for a float: no module
        return
    if "_in_threads(forward" not in module_source(text):
        return  # reduces over its elements: computed on one thread
    dtype = data.draw(st.sampled_from((np.float64, np.float32)), label="dtype")
    family = data.draw(st.sampled_from(SHAPE_FAMILIES[1:]), label="shapes")
    small = {
        n: data.draw(arrays(data.draw(st.sampled_from(family)), dtype), label=n)
        for n in module.INPUTS
    }
    shape = np.broadcast_shapes(*(v.shape for v in small.values()))
    values = _widened(small, BIG // max(1, shape[-1] if shape else 1) + 1)
    full = np.broadcast_shapes(*(v.shape for v in values.values()))
    if math.prod(full) < BIG:
        return  # every input broadcast along the last axis: nothing large
    upstream = None
    if data.draw(st.booleans(), label="grad_output given"):
        upstream = np.random.default_rng(1).standard_normal(full).astype(dtype)
    _check_threads(module, values, upstream)


def module_source(text: str) -> str:
    return symgrad.derive(text).module_source()


@pytest.mark.parametrize(
    "text",
    [
        "cos(x**2)",
        "erf(x)",
        "abs(x)",
        "exp(x)",
        "x**2 + y**2",
        "clip(x, 1.5, 5.5)",
        "x < y",
        "log(1 + exp(-y*(w*x + b)))",
        "max(x, y) * relu(x)",
    ],
)
def test_seed_expressions_threaded_agree_with_torch(text: str) -> None:
    rng = np.random.default_rng(7)
    n = 3 * BIG + 17  # slices of unequal length
    values = {"x": 2 * rng.standard_normal(n), "y": rng.standard_normal(n)}
    values.update(w=np.float64(0.7), b=np.float64(-0.3))
    values["x"][:5] = [0.0, 1.5, 5.5, -0.0, np.nan]  # kinks, and a nan
    module = _module(text)
    args = {k: values[k] for k in module.INPUTS}
    value, grads = module.value_and_grad(*args.values(), threads=2)
    want_value, want = torch_value_and_grad(text, module.INPUTS, args)
    # libm and PyTorch's vectorised cos differ in the last bit: absolute tolerance
    # where a result is near 0
    np.testing.assert_allclose(
        value, want_value, rtol=1e-12, atol=1e-13, equal_nan=True
    )
    assert module.WRT == module.INPUTS
    for got, expected in zip(grads, want, strict=True):
        scale = max(1.0, float(np.max(np.abs(np.nan_to_num(expected)))))
        np.testing.assert_allclose(
            got, expected, rtol=1e-9, atol=1e-12 * scale, equal_nan=True
        )
    _check_threads(module, args, None)


def test_broadcast_along_the_sliced_axis_and_a_long_second_axis() -> None:
    module = _module("x*y + sin(z)")
    rng = np.random.default_rng(3)
    values = {
        "x": rng.standard_normal((4, BIG)),  # the long axis is the last one
        "y": rng.standard_normal((4, 1)),  # broadcast along it: a sum of slices
        "z": np.float32(0.5),
    }
    _check_threads(module, values, rng.standard_normal((4, BIG)))


def test_threads_is_checked_and_small_or_reduced_inputs_run_on_one_thread() -> None:
    module = _module("exp(x)")
    x = np.linspace(-1, 1, 10)
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            module.value_and_grad(x, threads=bad)
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            module.forward(x, threads=bad)
    _same(module.forward(x, threads=None), np.exp(x))
    reduced = _module("mean((x + 2)*(x + 2)*2)")
    big = np.linspace(-1, 1, 2 * BIG)
    value, (grad,) = reduced.value_and_grad(big, threads=2)
    _same(grad, reduced.value_and_grad(big)[1][0])
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        reduced.forward(big, threads=0)
    assert "computed on one thread" in reduced.forward.__doc__


def test_threads_is_a_name_of_the_module() -> None:
    with pytest.raises(SymgradError, match="name of the generated module"):
        parse("threads * x")
