"""Simplify: shorter derivative formulas for a reader, in bounded time.

`shorten(expr)` returns the shortest of a few equal forms of a displayed derivative,
shortest by `sympy.count_ops` (on a tie the earlier form, closest to the registry's
own derivative form, is kept). The forms come from cheap
strategies tried in a fixed order, each on the result of the previous ones:

1. the formula as assembled from the registry's readable partials (the function's own
   derivative form: `sigmoid(x)*(1 - sigmoid(x))`, `1 - tanh(x)**2`);
2. common factors pulled out (`factor_terms`), after combining powers of one base
   (`powsimp`: `x*x**(x - 1)` is `x**x`, `cos(u)**(z - 1)/cos(u)**z` is `1/cos(u)`);
3. nested fractions put over one denominator (`together`: `1/(1 - 1/x)` is
   `x/(x - 1)`), and the polynomial parts factored (`factor`);
4. on each of these: a power of one base common to every term pulled out of a sum
   (`(u)**(e + 1)*a + (u)**(e + 2)*b` is `(u)**(e + 1)*(a + u*b)`), and quotients
   written with the language's own functions where it has them (`sin(u)/cos(u)` is
   `tan(u)`; `1/cos(u)` is `sec(u)` once the language has `sec`).

Bounded time without clocks: no strategy runs on a formula above `BUDGET` operations
(the formula is shown as assembled), and the polynomial strategies (3), whose cost
grows fastest, only below `POLY_BUDGET`. Every strategy is an identity off the points
where the formula is undefined: the display may read `1/(x + 1)**2` where the
program computes `(1 - x/(x + 1))/(x + 1)`; the numbers never come from here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import sympy as sp

from symgrad import registry

# Above this many operations (sympy.count_ops) a formula is shown as assembled.
BUDGET = 200
# Above this many, the polynomial strategies (together, factor) are not tried.
POLY_BUDGET = 60

# Above this many, the whole formula is not factored (`factor` is the costliest).
FACTOR_BUDGET = 30

# Nor when a power has a larger integer exponent: `factor` expands it
# (1/(1 - 1/(x + 1)**500) would take minutes).
FACTOR_DEGREE = 12

# sin(u)/cos(u) = tan(u), ...: (numerator, denominator) -> quotient.
_QUOTIENTS: dict[tuple[type, type], type] = {
    (sp.sin, sp.cos): sp.tan,
    (sp.cos, sp.sin): sp.cot,
    (sp.sinh, sp.cosh): sp.tanh,
    (sp.cosh, sp.sinh): sp.coth,
}
# 1/cos(u) = sec(u), ...
_RECIPROCALS: dict[type, type] = {
    sp.cos: sp.sec,
    sp.sin: sp.csc,
    sp.cosh: sp.sech,
    sp.sinh: sp.csch,
}


def _language_classes() -> frozenset[type]:
    return frozenset(
        rule.cls
        for rule in registry.RULES
        if rule.is_public and rule.cls is not None and not rule.reduction
    )


def size(expr: sp.Expr) -> int:
    """How long a formula reads: its operations (`sympy.count_ops`)."""
    return sp.count_ops(expr)


def shorten(expr: sp.Expr, functions: Collection[type] | None = None) -> sp.Expr:
    """The shortest equal form of `expr` the strategies find (see the module doc).

    `functions`: the SymPy classes the printed formula may use for quotients
    (`tan`, `sec`, ...); by default, the language's own (the registry's rows).
    """
    if not isinstance(expr, sp.Expr) or expr.is_Atom:
        return expr
    ops = sp.count_ops(expr)
    if ops > BUDGET:
        return expr
    known = _language_classes() if functions is None else frozenset(functions)

    candidates: list[sp.Expr] = []

    def attempt(strategy: Callable[[sp.Expr], sp.Expr], source: sp.Expr) -> sp.Expr:
        try:
            result = strategy(source)
        except Exception:  # SymPy internals: that form is not offered
            return source
        candidates.append(result)
        return result

    tidy = attempt(sp.factor_terms, expr)  # first: kept on a tie (2*(tan(u)**2 + 1))
    candidates.append(expr)
    if _has_shared_bases(expr):
        combined = attempt(lambda e: sp.powsimp(e, combine="exp"), expr)
        tidy = attempt(sp.factor_terms, combined)
    if ops <= POLY_BUDGET and expr.has(sp.Add) and _has_division(expr):
        attempt(_over_one_denominator, tidy)
        if ops <= FACTOR_BUDGET and _degree(expr) <= FACTOR_DEGREE:
            attempt(sp.factor, tidy)
    for form in list(candidates):
        pulled = attempt(lambda e: _pull_common_powers(e, known), form)
        attempt(lambda e: _quotients(e, known), pulled)
    return min(candidates, key=size)


def _over_one_denominator(expr: sp.Expr) -> sp.Expr:
    """Each sum and product, innermost first, over one denominator where that is
    shorter (`1 - x/(x + 1)` is `1/(x + 1)`); function arguments are left as they
    are (they are the expression as the user wrote it)."""
    if isinstance(expr, sp.Pow):
        return expr.func(_over_one_denominator(expr.base), expr.exp)
    if not isinstance(expr, (sp.Add, sp.Mul)):
        return expr
    rebuilt = expr.func(*(_over_one_denominator(a) for a in expr.args))
    if not _has_division(rebuilt) or not rebuilt.has(sp.Add):
        return rebuilt
    forms = [rebuilt, sp.factor_terms(sp.together(rebuilt))]
    if _degree(rebuilt) <= FACTOR_DEGREE:  # numerator and denominator expanded
        forms.append(sp.factor_terms(sp.cancel(rebuilt)))
    return min(forms, key=size)


def _degree(expr: sp.Expr) -> int:
    """The largest integer (or rational's numerator) among the exponents."""
    return max(
        (
            abs(node.exp.p)
            for node in sp.preorder_traversal(expr)
            if isinstance(node, sp.Pow) and node.exp.is_Rational
        ),
        default=0,
    )


def _has_shared_bases(expr: sp.Expr) -> bool:
    """Whether some base appears in two powers (x*x**(x - 1), c**(z - 1)/c**z)."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Mul):
            bases = [f.as_base_exp()[0] for f in node.args]
            if len(bases) != len(set(bases)):
                return True
    return False


def _has_division(expr: sp.Expr) -> bool:
    return any(
        isinstance(node, sp.Pow) and node.exp.is_negative
        for node in sp.preorder_traversal(expr)
    )


def _pull_common_powers(expr: sp.Expr, known: Collection[type]) -> sp.Expr:
    """In each sum, a power of a base that every term holds, pulled out.

    `b**(e + 1)*p + b**(e + 2)*q` is `b**(e + 1)*(p + b*q)`: the exponents must differ
    by integers (SymPy's factor_terms finds numeric exponents itself, not these).
    """

    def pull(add: sp.Expr) -> sp.Expr:
        tables = [_powers(term) for term in add.args]
        for base, exponent in tables[0].items():
            if exponent.is_Number:
                continue
            offsets = []
            for table in tables:
                other = table.get(base)
                offset = None if other is None else other - exponent
                if offset is None or not offset.is_Integer:
                    break
                offsets.append(offset)
            else:  # pulled at each exponent that occurs: the shortest is kept
                return min(
                    (
                        _pulled(add, base ** (exponent + o), known)
                        for o in sorted(set(offsets))
                    ),
                    key=size,
                )
        return add

    return expr.replace(lambda e: isinstance(e, sp.Add), pull)


def _pulled(add: sp.Expr, common: sp.Expr, known: Collection[type]) -> sp.Expr:
    rest = sp.Add(*(sp.powsimp(t / common, combine="exp") for t in add.args))
    return common * sp.gcd_terms(_quotients(rest, known), fraction=False)


def _powers(term: sp.Expr) -> dict[sp.Expr, sp.Expr]:
    table: dict[sp.Expr, sp.Expr] = {}
    for factor in sp.Mul.make_args(term):
        base, exponent = factor.as_base_exp()
        if not base.is_Number:
            table[base] = table.get(base, sp.S.Zero) + exponent
    return table


def _quotients(expr: sp.Expr, known: Collection[type]) -> sp.Expr:
    """sin(u)**k/cos(u)**k as tan(u)**k, 1/cos(u)**k as sec(u)**k, ... for the
    functions in `known` (the language's own: the printed formula must parse)."""
    quotients = {pair: f for pair, f in _QUOTIENTS.items() if f in known}
    reciprocals = {f: r for f, r in _RECIPROCALS.items() if r in known}
    if not quotients and not reciprocals:
        return expr

    inverse = {r: f for f, r in reciprocals.items()}

    def rewrite(product: sp.Expr) -> sp.Expr:
        powers: dict[tuple[type, sp.Expr], sp.Expr] = {}
        others: list[sp.Expr] = []
        for factor in sp.Mul.make_args(product):  # a lone power is one factor
            base, exponent = factor.as_base_exp()
            if (
                isinstance(base, sp.Function)
                and len(base.args) == 1
                and (exponent.is_Integer)
            ):
                func = inverse.get(base.func)
                if func is not None:  # sec(u)**k, rewritten already: cos(u)**-k
                    key = (func, base.args[0])
                    powers[key] = powers.get(key, sp.S.Zero) - exponent
                    continue
                key = (base.func, base.args[0])
                powers[key] = powers.get(key, sp.S.Zero) + exponent
            else:
                others.append(factor)
        new: list[sp.Expr] = []
        for (top, bottom), quotient in quotients.items():
            for (func, arg), k in list(powers.items()):
                if func is not top or k <= 0:
                    continue
                j = powers.get((bottom, arg), sp.S.Zero)
                m = min(k, -j)
                if m > 0:
                    powers[(top, arg)] = k - m
                    powers[(bottom, arg)] = j + m
                    new.append(quotient(arg) ** m)
        for (func, arg), k in list(powers.items()):
            if func in reciprocals and k < 0:
                powers[(func, arg)] = sp.S.Zero
                new.append(reciprocals[func](arg) ** -k)
        rebuilt = [func(arg) ** k for (func, arg), k in powers.items() if k != 0]
        return sp.Mul(*others, *rebuilt, *new)

    return expr.replace(
        lambda e: isinstance(e, sp.Mul) or _is_reciprocal_power(e, reciprocals),
        rewrite,
    )


def _is_reciprocal_power(expr: sp.Expr, reciprocals: dict[type, type]) -> bool:
    return (
        isinstance(expr, sp.Pow)
        and expr.exp.is_Integer
        and expr.exp < 0
        and expr.base.func in reciprocals
        and len(expr.base.args) == 1
    )


__all__ = [
    "BUDGET",
    "FACTOR_BUDGET",
    "FACTOR_DEGREE",
    "POLY_BUDGET",
    "shorten",
    "size",
]
