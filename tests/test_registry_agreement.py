"""Every registry row, through the generated NumPy code, against PyTorch autograd.

Driven by the registry: a new row is tested here without new test code. Random points
come from the row's domain; kinks from its `kinks_at`, where the gradient must equal
PyTorch's exactly. float32 inputs must give float32 results close to PyTorch's float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch  # noqa: F401  (the oracle must be there: CI installs it)

from symgrad import registry
from symgrad.derivation import derive
from symgrad.oracles import torch_value_and_grad
from symgrad.parse import Parsed
from symgrad.printing import to_text

RULES = [rule for rule in registry.RULES]


def rule_expression(rule: registry.Rule) -> tuple[sp.Expr, tuple[str, ...]]:
    """The row's function applied to fresh inputs a0, a1, ... (fixed args as given)."""
    count = rule.arity[0]
    names = tuple(f"a{i}" for i in range(count) if i not in rule.fixed_args)
    args = []
    for i in range(count):
        if i in rule.fixed_args:
            args.append(sp.Integer(rule.fixed_args[i]))
        else:
            args.append(sp.Symbol(f"a{i}", real=True))
    if rule.cls in (sp.Add, sp.Mul, sp.Pow):
        expr = rule.cls(*args, evaluate=False)
    else:
        expr = rule.cls(*args)
    return expr, names


def derivation_for(rule: registry.Rule, convention: str = "torch"):
    expr, names = rule_expression(rule)
    parsed = Parsed(text=to_text(expr), expr=expr, inputs=names)
    return derive(parsed, convention=convention), names


def domain(rule: registry.Rule, index: int) -> tuple[float, float]:
    if index < len(rule.domain):
        return rule.domain[index]
    return rule.domain[-1]


def random_args(rule: registry.Rule, names: tuple[str, ...], seed: int, shape=(9,)):
    rng = np.random.default_rng(seed)
    args = {}
    for name in names:
        low, high = domain(rule, int(name[1:]))
        args[name] = rng.uniform(low, high, size=shape)
    return args


def compare(got, want, exact: bool, rtol: float = 1e-12) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        scale = max(1.0, float(np.nanmax(np.abs(want))) if want.size else 1.0)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_random_points_match_pytorch(rule: registry.Rule) -> None:
    derivation, names = derivation_for(rule)
    for seed in range(3):
        args = random_args(rule, names, seed)
        value, grads = derivation.module.value_and_grad(*(args[n] for n in names))
        want_value, want_grads = torch_value_and_grad(
            derivation.expression, names, args
        )
        compare(value, want_value, exact=False)
        for got, want in zip(grads, want_grads, strict=True):
            compare(got, want, exact=False, rtol=rule.torch_rtol)


KINK_RULES = [rule for rule in RULES if rule.kinks_at]


def kink_cases(rule: registry.Rule, names: tuple[str, ...]):
    for point in rule.kinks_at:
        values = {
            n: float(point[int(n[1:])] if int(n[1:]) < len(point) else point[-1])
            for n in names
        }
        yield {n: np.full(4, v) for n, v in values.items()}
        yield {n: np.asarray(v) for n, v in values.items()}  # 0-d
        if rule.reduction:  # ties and a single special element among others
            yield {n: np.array([v, v, 0.5 * v - 1.0, v]) for n, v in values.items()}
            yield {n: np.array([v, 2.0, -3.0]) for n, v in values.items()}


@pytest.mark.parametrize("rule", KINK_RULES, ids=[r.name for r in KINK_RULES])
def test_kinks_match_pytorch_exactly(rule: registry.Rule) -> None:
    derivation, names = derivation_for(rule)
    for args in kink_cases(rule, names):
        value, grads = derivation.module.value_and_grad(*(args[n] for n in names))
        want_value, want_grads = torch_value_and_grad(
            derivation.expression, names, args
        )
        compare(value, want_value, exact=False)
        for name, got, want in zip(names, grads, want_grads, strict=True):
            assert np.shape(got) == np.shape(args[name])
            compare(got, want, exact=True)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_float32_stays_float32_and_matches(rule: registry.Rule) -> None:
    derivation, names = derivation_for(rule)
    args = random_args(rule, names, 7)
    args32 = {n: a.astype(np.float32) for n, a in args.items()}
    value, grads = derivation.module.value_and_grad(*(args32[n] for n in names))
    if np.asarray(value).dtype != np.bool_ and rule.name != "size":  # masks; a count
        assert np.asarray(value).dtype == np.float32
    want_value, want_grads = torch_value_and_grad(
        derivation.expression, names, args32, dtype="float32"
    )
    compare(value, want_value, exact=False, rtol=2e-5)
    for got, want in zip(grads, want_grads, strict=True):
        assert got.dtype == np.float32
        compare(got, want, exact=False, rtol=2e-5)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_shown_form_equals_exact_rule_off_kinks(rule: registry.Rule) -> None:
    """The formula a reader sees computes the same numbers as the exact rule."""
    derivation, names = derivation_for(rule)
    args = random_args(rule, names, 11, shape=())
    _, grads = derivation.module.value_and_grad(*(args[n] for n in names))
    for name, grad in zip(names, grads, strict=True):
        shown = derivation.derivatives[name]
        text = to_text(shown)
        again = derive(text, inputs=names) if shown.free_symbols else None
        if again is None:
            assert float(grad) == pytest.approx(float(shown), rel=1e-12, abs=1e-300)
            continue
        value = again.module.forward(*(args[n] for n in names))
        np.testing.assert_allclose(value, grad, rtol=1e-12, atol=1e-15)


def test_every_row_is_complete() -> None:
    seen_classes = set()
    for rule in RULES:
        assert rule.cls not in seen_classes, f"two rows for {rule.cls}"
        seen_classes.add(rule.cls)
        assert rule.signature and rule.description and rule.kink
        assert callable(rule.torch) and callable(rule.grad)
        assert isinstance(rule.numpy, str) or callable(rule.numpy)
        expr, names = rule_expression(rule)
        args = expr.args
        partials = rule.partials(args, expr)
        assert len(partials) == len(args), rule.name
        if rule.jax is not None:
            assert len(rule.partials(args, expr, "jax")) == len(args)
        if rule.latex is not None:
            rule.latex.format(*(["x"] * len(args)))
        assert rule.domain and all(low <= high for low, high in rule.domain)


# JAX's documented values where its convention differs from PyTorch's.
JAX_CASES = [
    ("abs(x)", {"x": [0.0, -2.0, 3.0]}, {"x": [1.0, -1.0, 1.0]}),
    (
        "clip(x, 1.5, 5.5)",
        {"x": [1.0, 1.5, 3.0, 5.5, 7.0]},
        {"x": [0.0, 0.5, 1.0, 0.5, 0.0]},
    ),
    ("norm(x)", {"x": [0.0, 0.0]}, {"x": [np.nan, np.nan]}),
    ("norm(x, 1)", {"x": [0.0, -2.0]}, {"x": [1.0, -1.0]}),
    (
        "max(x, y)",
        {"x": [1.0, 2.0], "y": [1.0, 1.0]},
        {"x": [0.5, 1.0], "y": [0.5, 0.0]},
    ),
    ("relu(x)", {"x": [0.0, 1.0]}, {"x": [0.0, 1.0]}),
]


@pytest.mark.parametrize("text, at, expected", JAX_CASES, ids=[c[0] for c in JAX_CASES])
def test_jax_convention(text: str, at, expected) -> None:
    derivation = derive(text, convention="jax")
    _, grads = derivation.evaluate({k: np.asarray(v) for k, v in at.items()})
    for name, want in expected.items():
        np.testing.assert_array_equal(grads[name], np.asarray(want))
