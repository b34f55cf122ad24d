"""Generated modules' jvp, hvp and Hessians: equal to the evaluator bit for bit,
ruff-clean, and right against references we did not write (SciPy's hand-written
Rosenbrock derivatives, mpmath, PyTorch)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

import symgrad
from symgrad.oracles import mpmath_hessian, torch_hessian, torch_hvp, torch_jvp


def module(text: str, order: int = 2, **kwargs) -> types.ModuleType:
    derivation = symgrad.derive(text, **kwargs)
    source = derivation.module_source(order=order)
    compiled = types.ModuleType("symgrad_second_order")
    exec(compile(source, "<generated>", "exec"), compiled.__dict__)  # noqa: S102
    return compiled


def rosenbrock_text(n: int) -> str:
    return " + ".join(
        f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1)
    )


EXPRESSIONS = [
    "cos(x**2)",
    "x**2 + y**2",
    "sin(cos(norm(x)**2 + 1))",
    "mean((x + 2)*(x + 2)*2)",
    "max(x, y)**2",
    "clip(x, 1.5, 5.5)*exp(y)",
    "where(x > 0, sqrt(x), x**3)*y",
    "prod(x)*sum(y)",
    "x/y + log(x)*y",
    "x < y",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_module_equals_evaluator_bit_for_bit(text: str) -> None:
    m = module(text)
    f = symgrad.derive(text).function
    rng = np.random.default_rng(3)
    for shape in [(), (5,), (2, 3)]:
        args = [rng.uniform(0.2, 2.0, size=shape) for _ in m.INPUTS]
        vectors = [rng.normal(size=shape) for _ in m.WRT]
        for got, want in [
            (m.jvp(args, vectors), f.jvp(args, vectors)),
            (m.hvp(args, vectors), f.hvp(args, vectors)),
        ]:
            np.testing.assert_array_equal(got[0], want[0])
            for a, b in zip(
                np.broadcast_arrays(*np.atleast_1d(got[1])),
                np.broadcast_arrays(*np.atleast_1d(want[1])),
                strict=True,
            ):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
        if shape == ():
            np.testing.assert_array_equal(
                m.hessian_sparse(*args), f.hessian_sparse(*args)
            )
        np.testing.assert_array_equal(m.hessian_matrix(*args), f.hessian_matrix(*args))


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_module_matches_pytorch(text: str) -> None:
    m = module(text)
    rng = np.random.default_rng(5)
    args = {n: rng.uniform(0.2, 2.0, size=(4,)) for n in m.INPUTS}
    vectors = {n: rng.normal(size=(4,)) for n in m.INPUTS}
    primals = [args[n] for n in m.INPUTS]
    value, tangent = m.jvp(primals, [vectors[n] for n in m.INPUTS])
    want_value, want_tangent = torch_jvp(text, m.INPUTS, args, vectors)
    np.testing.assert_allclose(tangent, want_tangent, rtol=1e-12, atol=1e-12)
    grad_output = rng.normal(size=np.shape(value))
    _, products = m.hvp(primals, [vectors[n] for n in m.INPUTS], grad_output)
    want = torch_hvp(text, m.INPUTS, args, vectors, grad_output)
    for got, expected in zip(products, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    blocks = m.hessian(*primals)
    want_blocks = torch_hessian(text, m.INPUTS, args)
    for i in range(len(m.INPUTS)):
        for j in range(len(m.INPUTS)):
            assert blocks[i][j].shape == (4, 4)
            np.testing.assert_allclose(
                blocks[i][j], want_blocks[i][j], rtol=1e-12, atol=1e-12
            )


@pytest.mark.parametrize("n", [2, 10, 1000])
def test_rosenbrock_scalar_inputs_against_scipy(n: int) -> None:
    m = module(rosenbrock_text(n), inputs=[f"x{i}" for i in range(n)])
    rng = np.random.default_rng(n)
    point = rng.uniform(-2, 2, size=n)
    value, grads = m.value_and_grad(*point)
    np.testing.assert_allclose(value, rosen(point), rtol=1e-12)
    np.testing.assert_allclose(np.array(grads), rosen_der(point), rtol=1e-12)
    rows, columns = m.HESSIAN_SPARSITY
    assert len(rows) == (3 * n - 2)  # 2,998 of 10**6 for n = 1,000
    dense = np.zeros((n, n))
    dense[rows, columns] = m.hessian_sparse(*point)
    want = rosen_hess(point)
    np.testing.assert_allclose(dense, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    assert set(zip(*np.nonzero(want), strict=True)) <= set(
        zip(rows.tolist(), columns.tolist(), strict=True)
    )
    vector = rng.normal(size=n)
    _, products = m.hvp(tuple(point), tuple(vector))
    want_product = rosen_hess_prod(point, vector)
    np.testing.assert_allclose(
        np.array(products),
        want_product,
        rtol=1e-12,
        atol=1e-12 * np.abs(want_product).max(),
    )
    if n <= 10:
        np.testing.assert_allclose(
            m.hessian_matrix(*point), want, rtol=1e-12, atol=1e-9
        )


def test_kinks_at_second_order() -> None:
    # max(x, y)**2 at a tie: each side gets half of everything (PyTorch)
    np.testing.assert_array_equal(
        module("max(x, y)**2").hessian_matrix(2.0, 2.0), [[0.5, 0.5], [0.5, 0.5]]
    )
    for text, point in [("abs(x)", 0.0), ("relu(x)", 0.0), ("clip(x, 1.5, 5.5)", 1.5)]:
        np.testing.assert_array_equal(module(text).hessian_matrix(point), [[0.0]])
    # norm(x)**2 at 0: PyTorch's double backward gives nan, the limit is 2I
    np.testing.assert_array_equal(
        module("norm(x)**2").hessian_matrix(np.zeros(3)), 2 * np.eye(3)
    )
    # no limit for norm(x) itself: nan, as PyTorch
    assert np.isnan(module("norm(x)").hessian_matrix(np.zeros(2))).all()


def test_limit_at_zero_is_mpmaths() -> None:
    """sin(cos(norm(x)**2 + 1)) at x = 0: its Hessian's limit, 2 f'(0) I, from mpmath
    on the one-element case (norm(x) is abs(x) there, smooth in abs(x)**2)."""
    m = module("sin(cos(norm(x)**2 + 1))")
    (exact,) = mpmath_hessian("sin(cos(norm(x)**2 + 1))", ("x",), [0.0])[0]
    np.testing.assert_allclose(m.hessian_matrix(np.zeros(1)), [[exact]], rtol=1e-14)
    np.testing.assert_allclose(
        m.hessian_matrix(np.zeros(3)), exact * np.eye(3), rtol=1e-14
    )


def test_prod_second_order_with_zeros() -> None:
    text = "prod(x)"
    m = module(text)
    for x in (
        [2.0, 0.0, 3.0, 5.0],
        [0.0, 0.0, 3.0],
        [0.0, 0.0, 3.0, 0.0],
        [1.5, -2.0, 3.0],
        [0.0],
        [4.0],
    ):
        x = np.array(x)
        want = torch_hessian(text, ("x",), {"x": x})[0][0]
        np.testing.assert_allclose(m.hessian(x)[0][0], want, rtol=1e-14, atol=0)


def test_structure() -> None:
    m = module("x**2 + y**2 + abs(z)")
    assert m.WRT == ("x", "y", "z")
    rows, columns = m.HESSIAN_SPARSITY
    assert rows.tolist() == [0, 1] and columns.tolist() == [0, 1]  # abs'' is 0
    with pytest.raises(ValueError, match="one element each"):
        m.hessian_sparse(np.ones(2), 1.0, 1.0)
    with pytest.raises(ValueError, match="use hvp"):
        module("sum(x**3)").hessian_matrix(np.ones(1001))
    blocks = module("sum(x**3)*y").hessian(np.array([1.0, 2.0]), 3.0)
    assert blocks[0][0].shape == (2, 2) and blocks[0][1].shape == (2,)
    assert blocks[1][0].shape == (2,) and blocks[1][1].shape == ()
    # float32 stays float32; tangents are cast to their primal's dtype
    m = module("cos(x**2)")
    x = np.float32([0.5, 1.5])
    value, tangent = m.jvp((x,), (np.ones(2),))
    assert value.dtype == tangent.dtype == np.float32
    assert m.hvp((x,), (np.ones(2),))[1][0].dtype == np.float32
    assert m.hessian(x)[0][0].dtype == np.float32
    # a scalar tangent for an array input broadcasts, as a direction of all ones
    np.testing.assert_array_equal(m.jvp((x,), (1.0,))[1], m.jvp((x,), (np.ones(2),))[1])


def test_order_one_modules_have_jvp_but_not_hessians() -> None:
    m = module("cos(x**2)", order=1)
    assert hasattr(m, "jvp") and not hasattr(m, "hvp") and not hasattr(m, "hessian")


def test_generated_second_order_code_is_ruff_clean(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    from symgrad.cli import main

    for i, text in enumerate(
        ["x < y", "2", "sin(cos(norm(x)**2 + 1))", rosenbrock_text(40)]
    ):
        assert (
            main(["generate", text, "-o", str(tmp_path / f"m{i}.py"), "--order", "2"])
            == 0
        )
    result = subprocess.run(
        [
            ruff,
            "check",
            "--no-cache",
            "--select",
            "E,F,W,B,UP",
            "--line-length",
            "88",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
