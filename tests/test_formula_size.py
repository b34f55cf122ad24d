"""Printed derivatives are no longer than a careful human's (issue 10).

For each case of the corpus (`formula_corpus.py`: textbook tables, math.js's and
nerdamer's derivative tests, each answer written by hand), the formula symgrad prints
(the JSON's SymPy text, read back with `sympy.sympify`) must

1. equal the textbook's answer: at random points, in 30-digit arithmetic, with the
   registry's mpmath references for symgrad's own functions (sigmoid, softplus, ...)
   and mpmath's for SymPy's (sec, polygamma, ...); and
2. be at most 1.5 times the textbook's size, counted by `sympy.count_ops`; and
3. be valid input: `symgrad derive` reads the printed text back as the same formula.
"""

from __future__ import annotations

import random

import expression_strategies as strategies
import mpmath
import pytest
import sympy as sp
from formula_corpus import CASES
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import symgrad
from symgrad import derivation, program, registry, simplify
from symgrad.errors import SymgradError
from symgrad.parse import parse
from symgrad.printing import to_text

RATIO = 1.5
POINTS = 4


def _mpmath_namespace() -> dict[str, object]:
    """symgrad's functions by every name they print under, as mpmath computes them."""
    space: dict[str, object] = {"mpmath": mpmath}  # lambdify's printer names it
    for rule in registry.RULES:
        if rule.mpmath is None:
            continue
        names = list(rule.names)
        if rule.cls is not None:
            names.append(rule.cls.__name__)
        for name in names:
            if name.isidentifier() and not hasattr(mpmath, name):
                space[name] = lambda *a, _ref=rule.mpmath: _ref(mpmath, *a)
    return space


NAMESPACE = _mpmath_namespace()


def read(text: str, names: list[str]) -> sp.Expr:
    symbols = {n: sp.Symbol(n, real=True) for n in names}
    return sp.sympify(text, locals=symbols)


def values_at(expr: sp.Expr, names: list[str], point: list[mpmath.mpf]) -> object:
    symbols = [sp.Symbol(n, real=True) for n in names]
    return sp.lambdify(symbols, expr, modules=[NAMESPACE, "mpmath"])(*point)


@pytest.mark.parametrize(
    "text, wrt, textbook, interval, source",
    CASES,
    ids=[f"{c[4]}: d/d{c[1]} {c[0]}" for c in CASES],
)
def test_printed_formula_is_the_textbooks_and_no_longer(
    text: str, wrt: str, textbook: str, interval: tuple[float, float], source: str
) -> None:
    derivation = symgrad.derive(text)
    names = list(derivation.inputs)
    printed_text = derivation.to_dict()["derivatives"][wrt]["text"]
    printed = read(printed_text, names)
    formula = derivation.derivatives[wrt]
    if formula.free_symbols:
        again = symgrad.derive(to_text(formula), inputs=names)
        assert again.expression == formula, to_text(formula)
    answer = read(textbook, names)

    rng = random.Random(f"{text} {wrt}")
    with mpmath.workdps(30):
        for _ in range(POINTS):
            point = [mpmath.mpf(rng.uniform(*interval)) for _ in names]
            got = values_at(printed, names, point)
            want = values_at(answer, names, point)
            assert mpmath.almosteq(got, want, rel_eps=1e-20, abs_eps=1e-20), (
                f"{printed_text} is not {textbook} at {point}: {got} != {want}"
            )

    size, human = sp.count_ops(printed), sp.count_ops(answer)
    assert size <= RATIO * human, (
        f"d/d{wrt} {text}: printed {printed_text} ({size} operations) is longer "
        f"than {RATIO} x the textbook's {textbook} ({human})"
    )


X = sp.Symbol("x", real=True)


def test_quotients_use_only_the_languages_functions() -> None:
    cot_x = sp.cos(X) / sp.sin(X)
    assert simplify.shorten(cot_x, functions={sp.cot}) == sp.cot(X)
    assert simplify.shorten(cot_x, functions=()) == cot_x
    assert simplify.shorten(1 / sp.cos(X) ** 2, functions={sp.sec}) == (sp.sec(X) ** 2)
    assert simplify.shorten(sp.sin(X) ** 3 / sp.cos(X) ** 2, functions={sp.tan}) == (
        sp.sin(X) * sp.tan(X) ** 2
    )


def test_a_formula_over_the_budget_is_shown_as_assembled() -> None:
    nested = sum(X**k / (1 - 1 / (X + k)) for k in range(1, 40))
    assert sp.count_ops(nested) > simplify.BUDGET
    assert simplify.shorten(nested) is nested
    small = sum(1 / (1 - 1 / (X + k)) for k in range(1, 3))
    assert sp.count_ops(simplify.shorten(small)) < sp.count_ops(small)


def _at(expr: sp.Expr, names: list[str], point: list[mpmath.mpf]) -> object:
    try:
        value = values_at(expr, names, point)
    except (ArithmeticError, ValueError, TypeError):
        return None  # undefined there (a pole, log of a negative number)
    except RecursionError:  # SymPy's mpmath printer rewrites sech/acoth/... in a
        return None  # circle for some arguments: no reference for that formula
    if not isinstance(value, (mpmath.mpf, int, float)) or not mpmath.isfinite(value):
        return None
    return value


@seed(1)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(text=strategies.expressions(variables=("x", "y")), data=st.data())
def test_the_shown_formula_has_the_assembled_formulas_values(
    text: str, data: st.DataObject
) -> None:
    """Shortening changes the form only: wherever both are defined, the formula shown
    has the values of the one assembled from the registry's partials."""
    try:
        parsed = parse(text)
    except SymgradError:
        return
    if len(parsed.graph.nodes) > derivation.FORMULA_NODES:
        return
    names = list(parsed.inputs)
    assembled = program.gradient_expressions(program.build(parsed.expr, tuple(names)))
    shown = symgrad.derive(parsed).derivatives
    for _ in range(3):
        point = [mpmath.mpf(data.draw(st.floats(-3, 3), label=name)) for name in names]
        with mpmath.workdps(30):
            for name in names:
                want = _at(assembled[name], names, point)
                got = _at(shown[name], names, point)
                if want is None or got is None:
                    continue
                assert mpmath.almosteq(got, want, rel_eps=1e-15, abs_eps=1e-15), (
                    f"{text}: d/d{name} shown {shown[name]} = {got}, assembled "
                    f"{assembled[name]} = {want} at {point}"
                )
