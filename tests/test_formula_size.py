"""Printed derivatives are no longer than a careful human's (issue 10).

For each case of the corpus (`formula_corpus.py`: textbook tables, math.js's and
nerdamer's derivative tests, each answer written by hand), the formula symgrad prints
(the JSON's SymPy text, read back with `sympy.sympify`) must

1. equal the textbook's answer: at random points, in 30-digit arithmetic, with the
   registry's mpmath references for symgrad's own functions (sigmoid, softplus, ...)
   and mpmath's for SymPy's (sec, polygamma, ...); and
2. be at most 1.5 times the textbook's size, counted by `sympy.count_ops`.
"""

from __future__ import annotations

import random

import mpmath
import pytest
import sympy as sp
from formula_corpus import CASES

import symgrad
from symgrad import registry

RATIO = 1.5
POINTS = 4


def _mpmath_namespace() -> dict[str, object]:
    """symgrad's functions by every name they print under, as mpmath computes them."""
    space: dict[str, object] = {"mpmath": mpmath}  # lambdify's printer names it
    for rule in registry.RULES:
        if rule.mpmath is None or rule.mask:
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
