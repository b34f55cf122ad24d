"""Every registry row is complete: the registry is the single source of each fact."""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp

from symgrad import registry

RULES = list(registry.RULES)
# Not rows: the machinery that uses rows (mask casts, summing back, tangents,
# the parser's indexing).
MACHINERY = {"graph", "reverse", "forward", "parse"}


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_row_is_complete(rule: registry.Rule) -> None:
    assert rule.signature and rule.description and rule.kink, rule.name
    assert callable(rule.grad) and callable(rule.torch), rule.name
    assert isinstance(rule.numpy, str) or callable(rule.numpy)
    assert rule.domain and all(low <= high for low, high in rule.domain)
    # an mpmath reference, or the reason there is none
    assert callable(rule.mpmath) or rule.no_mpmath, rule.name
    if rule.is_public:
        assert not rule.used_by, f"{rule.name}: public rows are the language"
        # a row that is not smooth says where: the points the tests visit, and (for
        # the conditions plot marks) `kinks`
        if rule.kink != registry.SMOOTH:
            assert rule.kinks_at, f"{rule.name}: a kink but no kinks_at"
        if rule.kinks is not None:
            assert rule.kink != registry.SMOOTH, rule.name
    else:
        assert rule.used_by, f"{rule.name}: an internal row says which rows use it"
        for user in rule.used_by:
            assert user in registry.BY_NAME or user in MACHINERY, (rule.name, user)


INTERNAL_WITH_CLASS = [
    r for r in RULES if not r.is_public and r.cls is not None and r.name != "select"
]


@pytest.mark.parametrize(
    "rule", INTERNAL_WITH_CLASS, ids=[r.name for r in INTERNAL_WITH_CLASS]
)
def test_internal_rows_are_used_where_they_say(rule: registry.Rule) -> None:
    for user in rule.used_by:
        if user in MACHINERY:
            continue
        row = registry.BY_NAME[user]
        args = [sp.Symbol(f"a{i}", real=True) for i in range(row.arity[0])]
        out = sp.Symbol("out", real=True)
        partials = row.grad(*args, out) + (row.jax(*args, out) if row.jax else ())
        if row.tangent is not None:  # forward mode's own rule
            dots = [sp.Symbol(f"d{i}", real=True) for i in range(row.arity[0])]
            partials += (row.tangent(*args, out, *dots),)
        assert any(sp.sympify(p).has(rule.cls) for p in partials), (rule.name, user)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_mpmath_reference_runs_in_the_domain(rule: registry.Rule) -> None:
    if rule.mpmath is None or rule.name in ("float", "unbroadcast"):
        return
    args = []
    for i in range(rule.arity[0]):
        if i in rule.fixed_args:
            args.append(mpmath.mpf(rule.fixed_args[i]))
        else:
            low, high = rule.domain[min(i, len(rule.domain) - 1)]
            args.append(mpmath.mpf(low + (high - low) * 0.37))
    value = rule.mpmath(mpmath, *args)
    assert mpmath.isfinite(mpmath.mpf(value)), rule.name


def test_comparisons_are_derived_from_the_rows() -> None:
    assert set(registry.COMPARISONS) == {"<", "<=", ">", ">=", "==", "!="}
    assert all(rule.mask for rule in registry.COMPARISONS.values())
