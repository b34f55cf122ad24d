"""Forward mode and second order, every public row against PyTorch.

Driven by the registry, as tests/test_registry_agreement.py: each row written as a
string of fresh inputs ("clip(a0, a1, a2)"), and symgrad's jvp, hvp and Hessian (the
evaluator's, which the generated modules equal bit for bit: test_generate_second_order)
compared with `torch.func.jvp`, `torch.autograd.functional.hvp` and
`torch.autograd.functional.hessian` on the same string. At kinks the conventions are
PyTorch's double backward (abs'' = relu'' = clip'' = 0); where PyTorch gives nan
there, it says nothing (no reference) unless the test states the limit.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_registry_agreement import PUBLIC, kink_cases, random_args, row_text

import symgrad
from symgrad import registry
from symgrad.graph import ancestors
from symgrad.oracles import (
    mpmath_hessian,
    torch_forward_over_reverse,
    torch_hessian,
    torch_hvp,
    torch_jvp,
)


def close(got, want, rtol: float, what: str = "") -> None:
    """`got` equals `want` within rtol (scaled by the largest entry), nan where nan
    unless PyTorch's nan (no reference), shape and dtype exactly."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    known = ~np.isnan(w)
    finite = np.isfinite(w)
    np.testing.assert_array_equal(g[known & ~finite], w[known & ~finite], err_msg=what)
    scale = max(1.0, float(np.max(np.abs(w[finite]), initial=0.0)))
    np.testing.assert_allclose(
        g[finite], w[finite], rtol=rtol, atol=rtol * scale, err_msg=what
    )


def function(text: str, names: tuple[str, ...]):
    return symgrad.derive(text, inputs=names).function


def rtol_of(f, floor: float = 1e-11) -> float:
    """The tolerance for a second-order result: PyTorch's own accuracy for every row
    the hvp program uses (torch.polygamma(1, x), lgamma's second derivative, is good
    to 1e-9 only: `Rule.torch_rtol`)."""
    outs = [n for n in f.program.hvp_outputs.values() if n is not None]
    rows = {n.op for n in ancestors(outs) if n.op in registry.BY_NAME}
    return max([floor, *(10 * registry.BY_NAME[r].torch_rtol for r in rows)])


def directions(args, seed: int):
    rng = np.random.default_rng(1000 + seed)
    return {n: rng.normal(size=np.shape(a)).astype(a.dtype) for n, a in args.items()}


@pytest.mark.parametrize("rule", PUBLIC, ids=[r.name for r in PUBLIC])
def test_jvp_and_hvp_match_pytorch(rule: registry.Rule) -> None:
    text, names = row_text(rule)
    f = function(text, names)
    rtol = rtol_of(f)
    for seed in range(2):
        args = random_args(rule, names, seed)
        tangents = directions(args, seed)
        primals = [args[n] for n in names]
        value, tangent = f.jvp(primals, [tangents[n] for n in names])
        want_value, want_tangent = torch_jvp(text, names, args, tangents)
        close(value, want_value, rtol, "value")
        close(tangent, want_tangent, rtol, f"{text} jvp")
        grad_output = np.random.default_rng(seed).normal(size=np.shape(value))
        _, products = f.hvp(primals, [tangents[n] for n in names], grad_output)
        want = torch_hvp(text, names, args, tangents, grad_output)
        for name, got, expected in zip(names, products, want, strict=True):
            close(got, expected, rtol, f"{text} hvp d/d{name}")


@pytest.mark.parametrize("rule", PUBLIC, ids=[r.name for r in PUBLIC])
def test_hessian_matches_pytorch_and_mpmath(rule: registry.Rule) -> None:
    text, names = row_text(rule)
    f = function(text, names)
    rtol = rtol_of(f)
    args = random_args(rule, names, 5, shape=())
    point = [args[n] for n in names]
    hessian = f.hessian(*point)
    want = torch_hessian(text, names, args)
    for i in range(len(names)):
        for j in range(len(names)):
            close(hessian[i][j], want[i][j], rtol, f"{text} H[{i}][{j}]")
    if rule.mpmath is not None and not rule.mask and rule.kink == registry.SMOOTH:
        exact = mpmath_hessian(text, names, [float(p) for p in point])
        np.testing.assert_allclose(
            f.hessian_matrix(*point), np.array(exact), rtol=1e-9, atol=1e-9
        )


KINK_RULES = [rule for rule in PUBLIC if rule.kinks_at]


@pytest.mark.parametrize("rule", KINK_RULES, ids=[r.name for r in KINK_RULES])
def test_second_order_at_kinks_is_pytorchs_double_backward(
    rule: registry.Rule,
) -> None:
    text, names = row_text(rule)
    f = function(text, names)
    for k, args in enumerate(kink_cases(rule, names)):
        vectors = directions(args, k)
        primals = [args[n] for n in names]
        _, products = f.hvp(primals, [vectors[n] for n in names])
        want = torch_hvp(text, names, args, vectors)
        # where PyTorch's two second orders disagree (x**y at y = 0: its where makes
        # the Hessian asymmetric), it gives no reference
        other = torch_forward_over_reverse(text, names, args, vectors)
        for name, got, expected, second in zip(
            names, products, want, other, strict=True
        ):
            expected = np.where(
                np.isclose(expected, second, rtol=1e-12, equal_nan=True),
                expected,
                np.nan,
            )
            close(got, expected, 1e-12, f"{text} at {args} hvp d/d{name}")
        _, tangent = f.jvp(primals, [vectors[n] for n in names])
        _, want_tangent = torch_jvp(text, names, args, vectors)
        close(tangent, want_tangent, 1e-12, f"{text} at {args} jvp")


@pytest.mark.parametrize("rule", PUBLIC, ids=[r.name for r in PUBLIC])
def test_float32_second_order_stays_float32(rule: registry.Rule) -> None:
    text, names = row_text(rule)
    f = function(text, names)
    args = {n: a.astype(np.float32) for n, a in random_args(rule, names, 3).items()}
    vectors = directions(args, 3)
    primals = [args[n] for n in names]
    value, tangent = f.jvp(primals, [vectors[n] for n in names])
    _, want_tangent = torch_jvp(text, names, args, vectors, dtype="float32")
    close(tangent, want_tangent, 1e-4, f"{text} jvp float32")
    _, products = f.hvp(primals, [vectors[n] for n in names])
    want = torch_hvp(text, names, args, vectors, dtype="float32")
    for name, got, expected in zip(names, products, want, strict=True):
        close(got, expected, 1e-4, f"{text} hvp float32 d/d{name}")
