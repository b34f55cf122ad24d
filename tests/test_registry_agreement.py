"""Every public row (`symgrad functions`), through the evaluator, against PyTorch.

Driven by the registry: a new row is tested here without new test code. Each row is
written as a string from its own signature ("clip(x, lo, hi)" -> "clip(a0, a1, a2)"),
computed by `symgrad.derive(text).evaluate(...)` and by PyTorch running the same string
row by row (`oracles.torch_value_and_grad`). Random points come from the row's domain;
kinks from its `kinks_at`, where the gradient must equal PyTorch's exactly. float32
inputs must give float32 results close to PyTorch's float32.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
import torch  # noqa: F401  (the oracle must be there: CI installs it)

import symgrad
from symgrad import registry
from symgrad.oracles import torch_value_and_grad

PUBLIC = [rule for rule in registry.RULES if rule.is_public]


def row_text(rule: registry.Rule) -> tuple[str, tuple[str, ...]]:
    """The row as a string of fresh inputs a0, a1, ..., from its signature."""
    signature = rule.signature.replace(", ...", "")
    tree = ast.parse(signature, mode="eval")
    names: list[str] = []
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and node.id not in calls
            and node.id not in registry.CONSTANTS
        ):
            node.id = f"a{len(names)}"
            names.append(node.id)
    text = ast.unparse(tree)
    # walk order is breadth first: rename again in reading order for the domains
    order = sorted(names, key=text.index)
    mapping = {old: f"a{i}" for i, old in enumerate(order)}
    for old in sorted(mapping, key=len, reverse=True):
        text = text.replace(old, mapping[old].upper())
    return text.replace("A", "a"), tuple(f"a{i}" for i in range(len(order)))


def domain(rule: registry.Rule, index: int) -> tuple[float, float]:
    return rule.domain[min(index, len(rule.domain) - 1)]


def random_args(rule: registry.Rule, names, seed: int, shape=(9,)):
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(*domain(rule, int(n[1:])), size=shape) for n in names}


def compare(got, want, exact: bool, rtol: float = 1e-12) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if exact:
        # the kink (always the first element) exactly; the smooth elements beside it
        # to the last bits (rounding order: x * (g / n) against (g * x) / n)
        np.testing.assert_array_equal(got.flat[:1], want.flat[:1])
        np.testing.assert_array_max_ulp(
            np.nan_to_num(got), np.nan_to_num(want), maxulp=4
        )
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    else:
        scale = max(1.0, float(np.nanmax(np.abs(want))) if want.size else 1.0)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def ours(text, names, args, dtype=None):
    derivation = symgrad.derive(text, wrt=names)
    value, grads = derivation.evaluate(
        {n: args[n] if dtype is None else args[n].astype(dtype) for n in names}
    )
    return value, [grads[n] for n in names]


def test_row_texts_are_the_rows() -> None:
    assert row_text(registry.BY_NAME["clip"]) == (
        "clip(a0, a1, a2)",
        ("a0", "a1", "a2"),
    )
    assert row_text(registry.BY_NAME["norminf"])[0] == "norm(a0, inf)"
    assert row_text(registry.BY_NAME["lt"])[0] == "a0 < a1"
    assert row_text(registry.BY_NAME["maximum"])[0] == "max(a0, a1)"


@pytest.mark.parametrize("rule", PUBLIC, ids=[r.name for r in PUBLIC])
def test_random_points_match_pytorch(rule: registry.Rule) -> None:
    text, names = row_text(rule)
    for seed in range(3):
        args = random_args(rule, names, seed)
        value, grads = ours(text, names, args)
        want_value, want_grads = torch_value_and_grad(text, names, args)
        compare(value, want_value, exact=False, rtol=rule.torch_rtol)
        for got, want in zip(grads, want_grads, strict=True):
            compare(got, want, exact=False, rtol=rule.torch_rtol)


KINK_RULES = [rule for rule in PUBLIC if rule.kinks_at]


def kink_cases(rule: registry.Rule, names: tuple[str, ...]):
    for point in rule.kinks_at:
        values = {n: float(point[min(int(n[1:]), len(point) - 1)]) for n in names}
        yield {n: np.full(4, v) for n, v in values.items()}
        yield {n: np.asarray(v) for n, v in values.items()}  # 0-d
        if rule.reduction:  # ties and a single special element among others
            yield {n: np.array([v, v, 0.5 * v - 1.0, v]) for n, v in values.items()}
            yield {n: np.array([v, 2.0, -3.0]) for n, v in values.items()}


@pytest.mark.parametrize("rule", KINK_RULES, ids=[r.name for r in KINK_RULES])
def test_kinks_match_pytorch_exactly(rule: registry.Rule) -> None:
    text, names = row_text(rule)
    for args in kink_cases(rule, names):
        value, grads = ours(text, names, args)
        want_value, want_grads = torch_value_and_grad(text, names, args)
        compare(value, want_value, exact=False, rtol=rule.torch_rtol)
        for name, got, want in zip(names, grads, want_grads, strict=True):
            assert np.shape(got) == np.shape(args[name])
            compare(got, want, exact=True)


@pytest.mark.parametrize("rule", PUBLIC, ids=[r.name for r in PUBLIC])
def test_float32_stays_float32_and_matches(rule: registry.Rule) -> None:
    text, names = row_text(rule)
    args = random_args(rule, names, 7)
    args32 = {n: a.astype(np.float32) for n, a in args.items()}
    value, grads = ours(text, names, args32)
    assert np.asarray(value).dtype == np.float32, text  # masks are 0/1 numbers
    want_value, want_grads = torch_value_and_grad(text, names, args32, dtype="float32")
    compare(value, want_value, exact=False, rtol=2e-5)
    for got, want in zip(grads, want_grads, strict=True):
        assert got.dtype == np.float32
        compare(got, want, exact=False, rtol=2e-5)


def test_trigamma_derivative_is_polygamma_2() -> None:
    _, grads = symgrad.derive("trigamma(x)").evaluate({"x": np.asarray(1.5)})
    assert float(grads["x"]) == pytest.approx(-0.828796644234319, rel=1e-12)


# jax.grad, measured with jax 0.10.2 (x64), where JAX's convention differs from
# PyTorch's; each is also compared with jax itself when it is installed.
JAX_CASES = [
    ("abs(x)", {"x": [0.0, -2.0, 3.0]}, {"x": [1.0, -1.0, 1.0]}),
    (
        "clip(x, 1.5, 5.5)",
        {"x": [1.0, 1.5, 3.0, 5.5, 7.0]},
        {"x": [0.0, 0.5, 1.0, 0.5, 0.0]},
    ),
    ("norm(x)", {"x": [0.0, 0.0]}, {"x": [np.nan, np.nan]}),
    ("norm(x, 1)", {"x": [0.0, -2.0]}, {"x": [1.0, -1.0]}),
    ("norm(x, inf)", {"x": [0.0, 0.0]}, {"x": [0.25, 0.25]}),
    ("norm(x, inf)", {"x": [0.0]}, {"x": [0.5]}),
    ("norm(x, inf)", {"x": [1.0, -1.0, 0.5]}, {"x": [0.5, -0.5, 0.0]}),
    (
        "max(x, y)",
        {"x": [1.0, 2.0], "y": [1.0, 1.0]},
        {"x": [0.5, 1.0], "y": [0.5, 0.0]},
    ),
    ("relu(x)", {"x": [0.0, 1.0]}, {"x": [0.0, 1.0]}),
    ("atan2(y, x)", {"y": 0.0, "x": 0.0}, {"y": np.nan, "x": np.nan}),
    ("atan2(y, x)", {"y": 0.0, "x": 1.0}, {"y": 1.0, "x": 0.0}),
    ("x**y", {"x": 0.0, "y": 0.0}, {"x": np.nan, "y": 0.0}),
    ("x**y", {"x": 0.0, "y": -1.0}, {"x": -np.inf, "y": np.nan}),
    ("x**y", {"x": 0.0, "y": 0.5}, {"x": np.inf, "y": 0.0}),
    ("x**y", {"x": 2.0, "y": 0.0}, {"x": 0.0, "y": np.log(2.0)}),
    ("hypot(x, y)", {"x": 0.0, "y": 0.0}, {"x": 0.5, "y": 0.5}),
    ("hypot(x, y)", {"x": 0.0, "y": 1.0}, {"x": 0.0, "y": 1.0}),
    ("lgamma(x)", {"x": 0.0}, {"x": np.nan}),
    ("lgamma(x)", {"x": -2.0}, {"x": np.nan}),
    ("lgamma(x)", {"x": -0.5}, {"x": 0.03648997397857731}),
]
JAX_IDS = [f"{c[0]}@{c[1]}" for c in JAX_CASES]


@pytest.mark.parametrize("text, at, expected", JAX_CASES, ids=JAX_IDS)
def test_jax_convention(text: str, at, expected) -> None:
    derivation = symgrad.derive(text, convention="jax")
    _, grads = derivation.evaluate({k: np.asarray(v) for k, v in at.items()})
    for name, want in expected.items():
        np.testing.assert_allclose(grads[name], np.asarray(want), rtol=1e-12)


JAX_FUNCTIONS = {
    "abs(x)": lambda jnp, x: jnp.abs(x),
    "clip(x, 1.5, 5.5)": lambda jnp, x: jnp.clip(x, 1.5, 5.5),
    "norm(x)": lambda jnp, x: jnp.linalg.norm(x),
    "norm(x, 1)": lambda jnp, x: jnp.linalg.norm(x, 1),
    "norm(x, inf)": lambda jnp, x: jnp.linalg.norm(x, jnp.inf),
    "max(x, y)": lambda jnp, x, y: jnp.maximum(x, y),
    "relu(x)": lambda jnp, x: jnp.maximum(x, 0.0),
    "atan2(y, x)": lambda jnp, y, x: jnp.arctan2(y, x),
    "x**y": lambda jnp, x, y: x**y,
    "hypot(x, y)": lambda jnp, x, y: jnp.hypot(x, y),
}


@pytest.mark.parametrize("text, at, expected", JAX_CASES, ids=JAX_IDS)
def test_jax_values_are_jax_grad(text: str, at, expected) -> None:
    jax = pytest.importorskip(
        "jax", reason="jax is not installed: the recorded values are checked above"
    )
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    if text == "lgamma(x)":
        function = lambda x: jax.scipy.special.gammaln(x)  # noqa: E731
    elif text == "relu(x)":
        function = jax.nn.relu
    else:
        function = lambda *a: JAX_FUNCTIONS[text](jnp, *a)  # noqa: E731
    names = list(at)
    args = [jnp.asarray(np.asarray(at[n], dtype=np.float64)) for n in names]
    grads = jax.grad(
        lambda *a: jnp.sum(function(*a)), argnums=tuple(range(len(names)))
    )(*args)
    for name, got in zip(names, grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected[name]))
