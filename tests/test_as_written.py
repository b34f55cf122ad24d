"""Regression cases from the bug report: expressions are computed as written.

Each case runs symgrad (through the fuzzer's one seam, `symgrad_value_and_grad`) and
the PyTorch oracle on the same string and point, and they must agree (oracle_torch's
`disagreements`: shape and dtype exactly, nan where nan, the same inf, numbers within
the dtype's tolerance; a gradient is judged wherever the oracle's is not nan). Where the
report states a number, that number is checked exactly too. Every warning is an error
while symgrad runs: no RuntimeWarning may escape it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import oracle_torch as oracle
import pytest
from test_fuzz_torch import symgrad_value_and_grad

from symgrad.errors import SymgradError

F64 = np.float64
F32 = np.float32
INF = np.inf


def a(*values: float, dtype: Any = F64) -> np.ndarray:
    """An array of the given values (a 0-d array for a single number)."""
    if len(values) == 1:
        return np.array(values[0], dtype=dtype)
    return np.array(values, dtype=dtype)


def symgrad_quietly(
    text: str, values: dict[str, np.ndarray], grad_output: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return symgrad_value_and_grad(text, values, grad_output)


def agree(
    text: str, values: dict[str, np.ndarray], grad_output: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray], oracle.Result]:
    """symgrad's answer, after checking it against the oracle's."""
    want = oracle.value_and_grad(text, values, grad_output)
    value, grads = symgrad_quietly(text, values, grad_output)
    problems = oracle.disagreements(value, grads, want)
    assert not problems, (
        f"{text!r} at {values}: {'; '.join(problems)}\n"
        f"  symgrad: {value!r}, {grads!r}\n  torch:   {want.value!r}, {want.grads!r}"
    )
    return value, grads, want


def exactly(got: Any, want: Any) -> None:
    got, want = np.asarray(got), np.asarray(want, dtype=np.asarray(got).dtype)
    assert got.shape == want.shape, (got, want)
    assert np.array_equal(got, want, equal_nan=True), (got, want)


# --- expressions are not simplified before they are computed -------------------------


def test_x_over_x_is_nan_at_zero_and_keeps_the_shape() -> None:
    value, _, _ = agree("x/x", {"x": a(0.0, 1.0, 2.0)})
    exactly(value, [np.nan, 1.0, 1.0])


def test_sqrt_times_sqrt_is_nan_at_minus_one() -> None:
    value, _, _ = agree("sqrt(x)*sqrt(x)", {"x": a(-1.0)})
    exactly(value, np.nan)


def test_sum_of_x_over_x_counts_the_elements() -> None:
    value, _, _ = agree("sum(x/x)", {"x": a(1.0, 2.0, -3.0, 0.5)})
    exactly(value, 4.0)


def test_zero_times_x_plus_y_has_the_broadcast_shape() -> None:
    value, grads, _ = agree(
        "0*x + y", {"x": a(1.0, 2.0, 3.0), "y": a(1.0, 2.0)[:, None]}
    )
    assert value.shape == (2, 3)
    exactly(grads["y"], [[3.0], [3.0]])


@pytest.mark.parametrize("text", ["x - x + 3", "0*x"])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_constant_results_keep_the_shape_and_dtype_of_x(text: str, dtype: Any) -> None:
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    value, grads, _ = agree(text, {"x": x})
    assert value.shape == (2, 3) and value.dtype == dtype
    exactly(grads["x"], np.zeros((2, 3)))


def test_masks_used_as_numbers_in_an_exponential() -> None:
    value, _, _ = agree("x*exp((x>0)*(x<1))", {"x": a(0.5)})
    assert float(value) == 1.3591409142295225


@pytest.mark.parametrize("text", ["(x<y)*(y-x)", "1 - where(x<y, x>0, y>0)"])
def test_masks_as_numbers_evaluate(text: str) -> None:
    agree(text, {"x": a(-1.0, 0.5, 2.0), "y": a(1.0, 0.5, -2.0)})


# --- where: the branch not taken sends nothing into the gradient ---------------------


def test_where_guarding_sqrt_has_gradient_zero_where_not_taken() -> None:
    _, grads, _ = agree("where(x > 0, sqrt(x), 0)", {"x": a(-1.0)})
    exactly(grads["x"], 0.0)


def test_where_guarding_a_reciprocal_has_gradient_zero_at_zero() -> None:
    _, grads, _ = agree("where(y != 0, 1/y, 0)", {"y": a(0.0)})
    exactly(grads["y"], 0.0)


# --- kinks stop an inf or nan coming from upstream, as PyTorch's masked backward -----


@pytest.mark.parametrize(
    ("text", "values", "grad"),
    [
        ("sqrt(relu(x))", {"x": a(-1.0)}, {"x": 0.0}),
        ("relu(x)*y", {"x": a(-1.0), "y": a(INF)}, {"x": 0.0}),
        ("sqrt(clip(x, 0, 1))", {"x": a(-1.0)}, {"x": 0.0}),
        ("sqrt(max(x, 0))", {"x": a(-1.0)}, {"x": 0.0}),
        ("sqrt(max(x, y))", {"x": a(-1.0), "y": a(0.0)}, {"x": 0.0, "y": INF}),
        ("sqrt(-min(x, 0))", {"x": a(1.0)}, {"x": 0.0}),
        ("sqrt(max(x) - 3)", {"x": a(1.0, 3.0)}, {"x": [0.0, INF]}),
        ("sqrt(min(x) + 1)", {"x": a(-1.0, 3.0)}, {"x": [INF, 0.0]}),
    ],
)
def test_kinks_stop_an_infinite_upstream(
    text: str, values: dict[str, np.ndarray], grad: dict[str, Any]
) -> None:
    _, grads, _ = agree(text, values)
    for name, expected in grad.items():
        exactly(grads[name], expected)


def test_norm_inf_with_an_infinite_upstream() -> None:
    # PyTorch's own backward gives nan at the element that is not the largest (inf
    # upstream times a 0 mask): the oracle has no reference there, only at the largest
    _, grads, want = agree("sqrt(norm(x, inf) - 3)", {"x": a(1.0, -3.0)})
    assert want.grads["x"][1] == -INF
    exactly(grads["x"][1], -INF)


# --- float semantics for numbers ---------------------------------------------------


@pytest.mark.parametrize("dtype", [F32, np.float16])
@pytest.mark.parametrize("text", ["x*sigmoid(1)", "hypot(3,4)*x", "x + 1/0"])
def test_low_precision_in_is_low_precision_out(text: str, dtype: Any) -> None:
    for x in (a(0.5, -2.0, dtype=dtype), a(1.5, dtype=dtype)):
        value, grads, _ = agree(text, {"x": x})
        assert value.dtype == dtype and grads["x"].dtype == dtype


def test_zero_to_a_negative_power_has_minus_inf_exponent_gradient() -> None:
    value, grads, _ = agree("0**y", {"y": a(-1.0)})
    exactly(value, INF)
    exactly(grads["y"], -INF)


def test_nan_constant_times_functions_evaluates() -> None:
    value, _, _ = agree(
        "exp(0/0)*(erfc(x) + clip(x, y, y))", {"x": a(0.5, 2.0), "y": a(1.0)}
    )
    assert np.isnan(value).all()


@pytest.mark.parametrize(
    ("text", "value", "grad"),
    [
        ("10**400*x", [INF, -INF], [INF, INF]),
        ("sin(10**1000)*x", [np.nan, np.nan], [np.nan, np.nan]),
        ("tanh(10**1000)*x", [1.0, -2.0], [1.0, 1.0]),
    ],
)
def test_huge_integers_are_floats(text: str, value: Any, grad: Any) -> None:
    got, grads, _ = agree(text, {"x": a(1.0, -2.0)})
    exactly(got, value)
    exactly(grads["x"], grad)


# --- reductions of empty arrays -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("mean(x)", np.nan), ("sum(x)", 0.0), ("prod(x)", 1.0)]
)
def test_reductions_of_an_empty_array(text: str, value: float) -> None:
    got, grads, _ = agree(text, {"x": np.zeros(0)})
    exactly(got, value)
    assert grads["x"].shape == (0,)


@pytest.mark.parametrize(
    ("text", "identity"), [("max(x)", -INF), ("min(x)", INF), ("norm(x, inf)", 0.0)]
)
def test_reductions_without_identity_of_an_empty_array(
    text: str, identity: float
) -> None:
    # PyTorch raises for these (with or without a dim); symgrad may give the
    # reduction's identity instead, or a clear SymgradError, never another exception
    with pytest.raises(oracle.OracleUndefined):
        oracle.value_and_grad(text, {"x": np.zeros(0)})
    try:
        value, grads = symgrad_quietly(text, {"x": np.zeros(0)})
    except SymgradError:
        return
    exactly(value, identity)
    assert grads["x"].shape == (0,) and grads["x"].dtype == np.float64


# --- kink conventions -----------------------------------------------------------------


def test_max_reduction_splits_ties_evenly() -> None:
    _, grads, _ = agree("max(x)", {"x": a(1.0, 2.0, 3.0, 4.0, 4.0, 0.0)})
    exactly(grads["x"], [0.0, 0.0, 0.0, 0.5, 0.5, 0.0])


def test_abs_has_derivative_zero_at_zero() -> None:
    _, grads, _ = agree("abs(x)", {"x": a(0.0)})
    exactly(grads["x"], 0.0)


def test_clip_has_derivative_one_at_both_bounds() -> None:
    _, grads, _ = agree("clip(x, 1.5, 5.5)", {"x": a(1.5, 5.5)})
    exactly(grads["x"], [1.0, 1.0])


def test_where_of_numbers_used_twice_keeps_the_inputs_dtype() -> None:
    # found by the fuzzer: the second use of a hash-consed where(c, 0, 0) lost its cast
    text = "where(x < x, 0, 0) / where(x < x, 0, 0) + where(x < 1, 2, 0)"
    for x in (np.array([], dtype=np.float32), np.array([0.5, 2.0], dtype=np.float32)):
        value, grads = symgrad_value_and_grad(text, {"x": x}, None)
        assert value.dtype == np.float32 and grads["x"].dtype == np.float32
