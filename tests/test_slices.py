"""1-D basic indexing: x[1:], x[:-1], x[::2], x[-1], as written, against PyTorch
(the same string, sliced by torch) and SciPy's hand-written Rosenbrock derivatives."""

from __future__ import annotations

import types

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

import symgrad
from symgrad.errors import SymgradError
from symgrad.oracles import torch_hvp, torch_jvp, torch_value_and_grad

ROSENBROCK = "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)"

EXPRESSIONS = [
    "x[1:] * x[:-1]",
    "sum(x[::2]**3)",
    "x[-1] * x",
    "sum(exp(x[1:-1]) * y)",
    "x[0] * sin(x[1:])",
    "(x + y)[2:]",
    "sum(x[1::3] * x[:2])",
    "max(x[1:]) + norm(x[:3])",
    ROSENBROCK,
]


def _module(text: str, order: int = 2) -> types.ModuleType:
    source = symgrad.derive(text).module_source(order=order)
    module = types.ModuleType("sliced")
    exec(compile(source, "<generated>", "exec"), module.__dict__)  # noqa: S102
    return module


def _point(names, seed: int, n: int = 7):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-2, 2, size=n if name == "x" else ()) for name in names}


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_first_and_second_order_match_pytorch(text: str) -> None:
    f = symgrad.derive(text).function
    names = f.INPUTS
    for seed in range(3):
        args = _point(names, seed)
        grad_output = np.random.default_rng(seed).normal(
            size=np.shape(f.forward(*args.values()))
        )
        value, grads = f.value_and_grad(*args.values(), grad_output=grad_output)
        want_value, want = torch_value_and_grad(text, names, args, grad_output)
        np.testing.assert_allclose(value, want_value, rtol=1e-13)
        for got, expected in zip(grads, want, strict=True):
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        vectors = _point(names, 100 + seed)
        _, tangent = f.jvp(list(args.values()), list(vectors.values()))
        np.testing.assert_allclose(
            tangent, torch_jvp(text, names, args, vectors)[1], rtol=1e-12, atol=1e-12
        )
        _, products = f.hvp(list(args.values()), list(vectors.values()), grad_output)
        want = torch_hvp(text, names, args, vectors, grad_output)
        for got, expected in zip(products, want, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_module_equals_evaluator_bit_for_bit(text: str) -> None:
    m = _module(text)
    f = symgrad.derive(text).function
    args = list(_point(m.INPUTS, 5).values())
    vectors = list(_point(m.INPUTS, 6).values())
    pairs = [
        (m.value_and_grad(*args), f.value_and_grad(*args)),
        (m.jvp(args, vectors), f.jvp(args, vectors)),
        (m.hvp(args, vectors), f.hvp(args, vectors)),
    ]
    for got, want in pairs:
        np.testing.assert_array_equal(got[0], want[0])
        many = isinstance(got[1], tuple)
        for a, b in zip(
            got[1] if many else [got[1]], want[1] if many else [want[1]], strict=True
        ):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.hessian_matrix(*args), f.hessian_matrix(*args))
    with pytest.raises(ValueError, match="indexes arrays"):
        m.hessian_sparse(*args)


@pytest.mark.parametrize("n", [2, 3, 10, 1000, 10**6])
def test_sliced_rosenbrock_is_scipys(n: int) -> None:
    m = _module(ROSENBROCK)
    rng = np.random.default_rng(n)
    x = rng.uniform(-2, 2, size=n)
    value, (grad,) = m.value_and_grad(x)
    np.testing.assert_allclose(value, rosen(x), rtol=1e-12)
    scale = np.abs(rosen_der(x)).max()
    np.testing.assert_allclose(grad, rosen_der(x), rtol=1e-12, atol=1e-12 * scale)
    vector = rng.normal(size=n)
    _, (product,) = m.hvp((x,), (vector,))
    want = rosen_hess_prod(x, vector)
    np.testing.assert_allclose(
        product, want, rtol=1e-12, atol=1e-12 * np.abs(want).max()
    )
    _, tangent = m.jvp((x,), (vector,))
    np.testing.assert_allclose(tangent, rosen_der(x) @ vector, rtol=1e-10)
    if n <= 10:
        np.testing.assert_allclose(
            m.hessian_matrix(x), rosen_hess(x), rtol=1e-12, atol=1e-9
        )


def test_generated_code_does_not_grow_with_n() -> None:
    source = symgrad.derive(ROSENBROCK).module_source(order=2)
    assert "_v1 = x[1:]" in source and "_v2 = x[:-1]" in source
    assert source.count("\n") < 700


@pytest.mark.parametrize(
    "text, column, message",
    [
        ("x[i]", 2, "integer number"),
        ("x[1.5]", 2, "integer number"),
        ("x[::0]", 4, "positive"),
        ("x[::-1]", 4, "positive"),
        ("x[1, 2]", 2, "1-D"),
        ("x[y:]", 2, "integer number"),
        ("sin(x)[1:2:x]", 11, "integer number"),
    ],
)
def test_bad_indices_point_at_the_problem(cli, text, column, message) -> None:
    with pytest.raises(SymgradError) as caught:
        symgrad.derive(text)
    assert caught.value.column == column, caught.value
    assert message in str(caught.value)
    result = cli("derive", text)
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.count("\n") <= 3 and "Traceback" not in result.stderr


def test_index_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(SymgradError, match="index 5 is out of range for an array of 3"):
        symgrad.derive("x[5] * 2").evaluate({"x": np.ones(3)})


def test_display() -> None:
    d = symgrad.derive(ROSENBROCK)
    assert str(d).splitlines()[0] == (
        "f(x) = sum((1 - x[:-1])**2 + 100*(x[1:] - x[:-1]**2)**2)"
    )
    assert "unslice(" in d.derivatives["x"].__str__() or "unslice(" in str(d)
