"""Hypothesis: random expression trees over the whole registry, random broadcasting
shapes
and random grad_output; the generated backward must agree with PyTorch autograd."""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symgrad import functions as F
from symgrad import registry
from symgrad.derivation import derive
from symgrad.oracles import torch_value_and_grad
from symgrad.parse import Parsed
from symgrad.printing import to_text

INTERNAL = {"size", "prod_grad", "safe_recip", "select"}
ROWS = [r for r in registry.RULES if r.name not in INTERNAL]
NAMES = ("x", "y", "z")
SHAPES = {"x": (2, 3), "y": (3,), "z": ()}
SYMBOLS = {n: sp.Symbol(n, real=True) for n in NAMES}


def leaves() -> st.SearchStrategy[sp.Expr]:
    return st.one_of(
        st.sampled_from([SYMBOLS[n] for n in NAMES]),
        st.sampled_from([sp.Integer(2), sp.Float(0.5), sp.Integer(-1), sp.Float(1.5)]),
    )


# Functions defined on part of the line get their arguments squashed into their test
# domain (lo + (hi - lo) * sigmoid(arg)), so that random trees stay where they are real.
RESTRICTED = {
    "log",
    "log2",
    "log10",
    "log1p",
    "asin",
    "acos",
    "acosh",
    "atanh",
    "erfinv",
    "lgamma",
    "polygamma",
    "tan",
}


def squash(arg: sp.Expr, low: float, high: float) -> sp.Expr:
    return sp.Float(low) + sp.Float(high - low) * F.sigmoid(arg)


def apply(rule: registry.Rule, args: list[sp.Expr]) -> sp.Expr:
    args = list(args)
    if rule.name in RESTRICTED:
        args = [
            squash(a, *rule.domain[min(i, len(rule.domain) - 1)])
            if i not in rule.fixed_args
            else a
            for i, a in enumerate(args)
        ]
    for index, value in rule.fixed_args.items():
        args[index] = sp.Integer(value)
    if rule.cls is sp.Pow:
        base, exponent = args
        # keep powers real and tame: a positive base or a small integer exponent
        if exponent.free_symbols:
            return sp.Pow(sp.Abs(base) + sp.Float(0.5), exponent / 4)
        return sp.Pow(base, sp.Integer(2))
    result = rule.cls(*args)
    if result.has(sp.I, sp.zoo, sp.nan) or not all(
        type(f) in registry.BY_CLASS for f in result.atoms(sp.Function)
    ):  # as the parser does: keep calls SymPy would make complex or foreign
        result = rule.cls(*args, evaluate=False)
    return result


def extend(children: st.SearchStrategy[sp.Expr]) -> st.SearchStrategy[sp.Expr]:
    @st.composite
    def node(draw: st.DrawFn) -> sp.Expr:
        rule = draw(st.sampled_from(ROWS))
        args = [draw(children) for _ in range(rule.arity[0])]
        return apply(rule, args)

    return node()


expressions = st.recursive(leaves(), extend, max_leaves=6).filter(
    lambda e: bool(e.free_symbols)
)


def finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.isfinite(a) & (np.abs(a) < 1e12)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(expr=expressions, seed=st.integers(0, 2**32 - 1))
def test_generated_backward_matches_pytorch(expr: sp.Expr, seed: int) -> None:
    names = tuple(n for n in NAMES if SYMBOLS[n] in expr.free_symbols)
    derivation = derive(Parsed(text=to_text(expr), expr=expr, inputs=names))
    rng = np.random.default_rng(seed)
    values = {n: rng.uniform(-2.0, 2.0, size=SHAPES[n]) for n in names}
    value, grads = derivation.module.value_and_grad(*(values[n] for n in names))
    upstream = rng.uniform(-1.0, 1.0, size=np.shape(value))
    _, grads = derivation.module.value_and_grad(
        *(values[n] for n in names), grad_output=upstream
    )
    want_value, want = torch_value_and_grad(expr, names, values, grad_output=upstream)
    value = np.asarray(value, dtype=np.float64)
    assert value.shape == want_value.shape
    ok = finite(value) & finite(want_value)
    np.testing.assert_allclose(
        value[ok],
        want_value[ok],
        rtol=1e-9,
        atol=1e-9 * max(1.0, float(np.max(np.abs(want_value[ok]), initial=0.0))),
    )
    np.testing.assert_array_equal(np.isnan(value), np.isnan(want_value))
    for name, got, expected in zip(names, grads, want, strict=True):
        assert got.shape == values[name].shape
        both = finite(got) & finite(expected)
        if not np.all(finite(expected)):
            continue  # a non-finite intermediate: PyTorch's nan/inf order is its own
        assert np.all(both), (name, got, expected)
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * scale)
