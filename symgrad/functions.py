"""SymPy function classes for what SymPy itself does not have (or spells differently).

SymPy already knows sin, exp, erf, Abs, floor, ... and symgrad uses those classes
directly. The classes here cover the rest of symgrad's language: numerically careful
elementwise functions (log1p, softplus, ...), functions with kinks whose derivative
convention must be PyTorch's (relu, clip, maximum, ...), masks made by comparisons
(usable in arithmetic, true = 1), reductions over all elements (sum, max, norm, ...),
and a few internal helpers that derivative rules need (size, safe reciprocal,
unbroadcast).

These classes carry no derivative rules and no printing: both live in the registry
(`symgrad.registry`), one row per function. Each class only says how many arguments it
takes and, where SymPy would otherwise be wrong, that its value is real.
"""

from __future__ import annotations

import sympy as sp


class SymgradFunction(sp.Function):
    """Base of symgrad's own SymPy functions: real-valued. `sympy.diff` takes their
    derivatives from the registry's readable partials (for displayed formulas, such
    as the second derivatives of `derive --order 2`; the numbers come from the
    graph)."""

    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        from symgrad import registry

        rule = registry.BY_CLASS.get(type(self))
        partials = rule.readable_partials(self.args, self) if rule else None
        if not partials or sp.sympify(partials[argindex - 1]).has(registry.UPSTREAM):
            raise TypeError(
                f"{type(self).__name__} has no formula for its derivative in SymPy "
                "(symgrad computes it from the graph)"
            )
        return sp.sympify(partials[argindex - 1])


def _make(name: str, nargs: int) -> type[SymgradFunction]:
    # The parser checks arity (with a message that says what is expected), so SymPy's
    # own nargs check is left out: it builds a FiniteSet on every call, which dominates
    # the time to build large programs.
    return type(name, (SymgradFunction,), {"arity": nargs, "__module__": __name__})


# Elementwise functions that SymPy lacks or would rewrite into a less exact form.
exp2 = _make("exp2", 1)
expm1 = _make("expm1", 1)
log2 = _make("log2", 1)
log10 = _make("log10", 1)
log1p = _make("log1p", 1)
sigmoid = _make("sigmoid", 1)
softplus = _make("softplus", 1)
relu = _make("relu", 1)
silu = _make("silu", 1)
round_ = _make("round_", 1)
hypot = _make("hypot", 2)
# Real roots (SymPy's cbrt and root are complex for a negative x), the logarithm to a
# base (SymPy's log(x, b) becomes log(x)/log(b)) and the normalised sinc (SymPy's
# sinc is sin(x)/x).
cbrt = _make("cbrt", 1)
root = _make("root", 2)
log_base = _make("log_base", 2)
sinc = _make("sinc", 1)
clip = _make("clip", 3)
maximum = _make("maximum", 2)
minimum = _make("minimum", 2)
where = _make("where", 3)

# Masks: 1 where the relation holds, else 0 (numeric, so they can be multiplied).
lt = _make("lt", 2)
le = _make("le", 2)
gt = _make("gt", 2)
ge = _make("ge", 2)
eq = _make("eq", 2)
ne = _make("ne", 2)
logical_and = _make("logical_and", 2)
logical_or = _make("logical_or", 2)
logical_not = _make("logical_not", 1)

# Reductions over all elements: the result is a scalar.
sum_ = _make("sum_", 1)
mean = _make("mean", 1)
prod = _make("prod", 1)
amax = _make("amax", 1)
amin = _make("amin", 1)
norm = _make("norm", 1)
norm1 = _make("norm1", 1)
norminf = _make("norminf", 1)
logsumexp = _make("logsumexp", 1)

# Internal helpers that derivative rules are written with.
size = _make("size", 1)
prod_grad = _make("prod_grad", 2)
prod_grad_tangent = _make("prod_grad_tangent", 2)  # (x, dx): prod_grad's tangent
safe_recip = _make("safe_recip", 1)
unbroadcast = _make("unbroadcast", 3)  # (term, target, consumer)
select = _make("select", 2)  # (mask, value): value where mask, exactly 0 elsewhere


class NoBound(sp.Atom):
    """A slice's missing bound (the None of x[1:]): neither a number nor an input."""

    def _sympystr(self, printer: object) -> str:
        return "None"


# 1-D basic indexing (the bounds are numbers, or NoBound() for a missing one)
slice_ = _make("slice_", 4)  # (x, start, stop, step): x[start:stop:step]
index = _make("index", 2)  # (x, i): x[i]
unslice = _make("unslice", 5)  # (g, x, start, stop, step): g scattered into x's shape
unindex = _make("unindex", 3)  # (g, x, i): g at x[i], zeros elsewhere
expand = _make("expand", 2)  # (t, like): t broadcast to like's shape

REDUCTIONS: frozenset[type] = frozenset(
    {sum_, mean, prod, amax, amin, norm, norm1, norminf, logsumexp, size}
)
MASKS: frozenset[type] = frozenset(
    {lt, le, gt, ge, eq, ne, logical_and, logical_or, logical_not}
)


def is_literal(expr: sp.Basic) -> bool:
    """A real constant that is just a number (pi, log(2), 1/2), not a call of ours.

    Constants that are not real (log(-1), kept unevaluated by the parser) are not
    literals: the generated code computes them, giving PyTorch's nan or inf.
    """
    if expr.free_symbols:
        return False
    if expr.is_Atom:
        return True
    if any(isinstance(node, SymgradFunction) for node in sp.preorder_traversal(expr)):
        return False
    return (
        expr.is_extended_real is True
        and expr.is_finite is True  # 1/0 kept unevaluated is computed, not folded
        and not expr.has(sp.zoo, sp.I)
    )


def is_real_constant(expr: sp.Basic) -> bool:
    """False for a constant SymPy made complex or undirected (log(-1), 1/0)."""
    if expr.free_symbols or expr.is_Atom and expr not in (sp.zoo, sp.I, sp.nan):
        return True
    if expr is sp.nan:  # atan2(0, 0): SymPy says nan, PyTorch 0; cos(inf) is nan anyway
        return False
    if expr.has(sp.zoo, sp.I, sp.AccumBounds):
        return False
    return expr.is_extended_real is not False
