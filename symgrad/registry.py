"""The function registry: one row per function, the single source of every rule.

A row (`Rule`) holds, for one function of symgrad's language:

- ``names``/``arity``/``build``: how the parser spells it and turns arguments into
SymPy;
- ``cls``: the SymPy class of the node it builds (how an expression finds its row);
- ``grad``: the local partial derivatives d out / d arg_i as SymPy expressions of the
  arguments and of ``out`` (the node itself), written with PyTorch's conventions at
  kinks;
- ``jax``: the partials where JAX's convention differs (None: the same as PyTorch's);
- ``shown``: a more readable form of ``grad`` for display, equal to it off the kinks;
- ``kink``: one line saying what the convention picks where the function is not smooth;
- ``numpy``: its NumPy spelling, a format string over the argument codes ``{0}, {1}``
  (``_name(...)`` calls a helper from `symgrad.runtime` that generated modules carry);
- ``latex``: a LaTeX format string, or None when SymPy's own LaTeX is right;
- ``torch``: the PyTorch reference, ``(torch_module, *tensors) -> tensor``, for tests;
- ``domain``/``kinks_at``: where the tests draw random points and which kinks they hit.

Adding a function is adding one row here: the parser, the derivatives, the generated
code, the catalog (`symgrad functions`) and the agreement tests all iterate this table.
For arrays, every derivative is the gradient of the sum of the output, as
``f(x).sum().backward()`` gives; the reverse program multiplies the partials below by
the upstream gradient and sums them back to each argument's shape.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from symgrad import functions as F

Partials = Callable[..., tuple[sp.Expr, ...]]

SMOOTH = "smooth wherever it is defined"


@dataclass(frozen=True)
class Rule:
    """One function of the language; see the module docstring for each field."""

    name: str
    cls: type | None
    signature: str
    description: str
    grad: Partials
    numpy: str | Callable[..., str]
    torch: Callable[..., Any]
    names: tuple[str, ...] = ()
    arity: tuple[int, int | None] = (1, 1)
    build: Callable[..., sp.Expr] | None = None
    jax: Partials | None = None
    shown: Partials | None = None
    kink: str = SMOOTH
    latex: str | None = None
    domain: tuple[tuple[float, float], ...] = ((-3.0, 3.0),)
    kinks_at: tuple[tuple[float, ...], ...] = ()
    reduction: bool = False
    # How closely PyTorch's own reference is right (relative): 1e-12 unless PyTorch's
    # implementation is known to be less accurate than float64 allows.
    torch_rtol: float = 1e-12
    fixed_args: dict[int, Any] = field(default_factory=dict)
    # Part of the language users write (default: it has names users call it by);
    # internal rows serve derivative rules only.
    public: bool | None = None
    # The result is a mask (a boolean array: comparisons and logic).
    mask: bool = False
    # Argument positions that take a mask as it is; elsewhere a mask used as a number
    # is cast to the inputs' floating dtype (exact 0/1).
    mask_args: tuple[int, ...] = ()
    # How the graph's node is shown as SymPy (default: `build`, else `cls`).
    sympy: Callable[..., sp.Expr] | None = None
    # The Python operator that spells this row in an expression ("+", "<", "not"), for
    # the rows written as operators rather than called by name.
    operator: str | None = None
    # The mpmath reference, ``(mpmath_module, *mpf args) -> mpf`` (masks give 0/1),
    # for high-precision checks at scalar points; None only with `no_mpmath` saying why.
    mpmath: Callable[..., Any] | None = None
    no_mpmath: str = ""
    # Where the row is not smooth, as conditions on expressions of its arguments:
    # ``(expr, level, periodic)`` means at ``expr == level`` (or in ``level + Z``).
    # `symgrad plot` marks these; `kinks_at` are the points the tests visit.
    kinks: Callable[..., tuple[tuple[sp.Expr, float, bool], ...]] | None = None
    # Internal rows: the rows (or "graph"/"reverse", the machinery) that use them.
    used_by: tuple[str, ...] = ()
    # Forward mode's own rule, where PyTorch's forward AD is not the backward rule
    # with the tangent as the upstream: the tangent as a SymPy expression of the
    # arguments, ``out`` and the arguments' tangents (0 for those that have none).
    tangent: Callable[..., sp.Expr] | None = None
    # PyTorch has no such function: `torch` is the composition its users write, whose
    # autograd rounds and underflows product by product (a tiny upstream times 1/x**2
    # is 0 there), which one partial cannot follow; tests let mpmath settle those.
    torch_composite: bool = False

    @property
    def is_public(self) -> bool:
        return bool(self.names) if self.public is None else self.public

    def to_sympy(self, *args: sp.Expr) -> sp.Expr:
        """The SymPy form of this operation of `args` (for display only)."""
        if self.sympy is not None:
            return self.sympy(*args)
        return (self.build or self.cls)(*args)

    def partials(
        self, args: Sequence[sp.Expr], out: sp.Expr, convention: str = "torch"
    ) -> tuple[sp.Expr, ...]:
        """Local partial derivatives of this node under the given convention."""
        rule = self.jax if (convention == "jax" and self.jax is not None) else self.grad
        return tuple(sp.sympify(p) for p in rule(*args, out))

    def readable_partials(
        self, args: Sequence[sp.Expr], out: sp.Expr, convention: str = "torch"
    ) -> tuple[sp.Expr, ...]:
        """Partials as shown to a reader: `shown` where given, else the exact rule."""
        if self.shown is not None and not (
            convention == "jax" and self.jax is not None
        ):
            return tuple(sp.sympify(p) for p in self.shown(*args, out))
        return self.partials(args, out, convention)


# The default p of norm(x, p).
TWO = sp.Integer(2)
# In a partial: the upstream gradient itself, for rules that move it rather than
# multiply it (a slice's gradient is the upstream scattered into the input's shape).
UPSTREAM = sp.Symbol("_upstream", real=True)
# A slice's missing bound (x[1:]) in SymPy forms (a number, not an input): printed
# as nothing in a slice.
NO_BOUND = F.NoBound()


def _zero(*args: sp.Expr) -> tuple[sp.Expr, ...]:
    return tuple(sp.S.Zero for _ in args[:-1])


def _pow_grad(b: sp.Expr, e: sp.Expr, out: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    # PyTorch: d/db = e * b**(e-1) (0 where e == 0); d/de = out * log(b), 0 where b == 0
    # and e >= 0 (the limit of b**e log b). No gradient flows into a number, so a
    # number's partial is not built (x**2 is the common case, and log(x) is costly).
    if b.is_Number:
        db = sp.S.Zero
    elif e.is_Number:
        db = e * b ** (e - 1)
    else:  # selected at e == 0, as PyTorch (an inf upstream gives 0 there, not nan);
        # so at e == 0 the Hessian's d/de of this is 0, as PyTorch's double backward
        db = F.where(F.eq(e, 0), 0, e * b ** (e - 1))
    if e.is_Number:
        de = sp.S.Zero
    elif b.is_Number:
        de = _pow_exponent_partial_at(b, e, out)
    else:
        de = F.where(F.logical_and(F.eq(b, 0), F.ge(e, 0)), 0, out * sp.log(b))
    return db, de


def _pow_tangent(
    b: sp.Expr, e: sp.Expr, out: sp.Expr, db: sp.Expr, de: sp.Expr
) -> sp.Expr:
    """PyTorch's forward AD of b**e: each side selected where its partial is taken
    as 0 (an inf tangent there gives 0, not nan), as pow_backward_self/_exponent."""
    base, exponent = _pow_grad(b, e, out)
    if e.is_Number:
        return db * base
    if b.is_Number:
        return de * exponent
    return F.where(F.eq(e, 0), 0, db * e * b ** (e - 1)) + F.where(
        F.logical_and(F.eq(b, 0), F.ge(e, 0)), 0, de * out * sp.log(b)
    )


def _pow_exponent_partial_at(b: sp.Expr, e: sp.Expr, out: sp.Expr) -> sp.Expr:
    """d(b**e)/de for a number b, as PyTorch: out * log(b); at b = 0 it is 0 where
    e >= 0 and -inf * out (-inf for e < 0) elsewhere; nan for b < 0 (log of a
    negative number). SymPy's log(0) (zoo) and log(-2) (complex) are not used."""
    if b > 0:
        return out * sp.log(b)
    if b == 0:
        return F.where(F.ge(e, 0), 0, -sp.oo * out)
    return sp.nan * out


def _pow_shown(b: sp.Expr, e: sp.Expr, out: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    de = (
        _pow_exponent_partial_at(b, e, out)
        if b.is_Number and b <= 0
        else out * sp.log(b)
    )
    return e * b ** (e - 1), de


def _pow_grad_jax(b: sp.Expr, e: sp.Expr, out: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    # JAX (measured, jax 0.10): d/db = e * b**(e-1) with no special case (nan at
    # b == e == 0); d/de = out * log(b), log(b) taken as 0 where b == 0 (nan where
    # b == 0 and e < 0: inf * 0).
    db = sp.S.Zero if b.is_Number else e * b ** (e - 1)
    if e.is_Number:
        de = sp.S.Zero
    elif b.is_Number:
        de = out * sp.log(b) if b > 0 else out * F.where(F.eq(b, 0), 0, sp.log(b))
    else:
        de = out * F.where(F.eq(b, 0), 0, sp.log(b))
    return db, de


def _int(bound: Any) -> int | None:
    """A slice bound from its tensor (a number), or None where it is missing."""
    if bound is None:
        return None
    return int(bound.item() if hasattr(bound, "item") else bound)


def _keeps(number: sp.Expr, other: sp.Expr) -> bool:
    """Whether number * other must stay unevaluated to read as written."""
    return bool(number.is_Number and (other.is_Add or number == 0))


def _mul_grad(*args: sp.Expr) -> tuple[sp.Expr, ...]:
    factors = args[:-1]
    return tuple(sp.Mul(*(factors[:i] + factors[i + 1 :])) for i in range(len(factors)))


def _fold(cls: type) -> Callable[..., sp.Expr]:
    def build(*args: sp.Expr) -> sp.Expr:
        result = args[0]
        for arg in args[1:]:
            result = cls(result, arg)
        return result

    return build


def _clip_grad(
    x: sp.Expr, lo: sp.Expr, hi: sp.Expr, out: sp.Expr
) -> tuple[sp.Expr, ...]:
    # PyTorch's clamp_backward_min_max, including lo > hi (where the result is hi).
    return (
        F.ge(x, lo) * F.le(x, hi),
        F.lt(x, lo) * F.lt(lo, hi),
        F.logical_or(F.gt(x, hi), F.lt(hi, lo)),
    )


def _clip_grad_jax(
    x: sp.Expr, lo: sp.Expr, hi: sp.Expr, out: sp.Expr
) -> tuple[sp.Expr, ...]:
    # JAX: clip(x, lo, hi) = minimum(maximum(x, lo), hi), each tie worth 1/2.
    inner = F.maximum(x, lo)
    through = F.lt(inner, hi) + F.eq(inner, hi) / 2
    return (
        (F.gt(x, lo) + F.eq(x, lo) / 2) * through,
        (F.lt(x, lo) + F.eq(x, lo) / 2) * through,
        F.gt(inner, hi) + F.eq(inner, hi) / 2,
    )


def _build_norm(x: sp.Expr, p: sp.Expr = TWO) -> sp.Expr:
    if p == 2:
        return F.norm(x)
    if p == 1:
        return F.norm1(x)
    if p == sp.oo:
        return F.norminf(x)
    raise ValueError("norm(x, p) supports p = 1, 2 or inf")


def _evenly(x: sp.Expr, out: sp.Expr) -> sp.Expr:
    # The gradient of a max/min over all elements is split evenly among the ties.
    return F.eq(x, out) / F.sum_(F.eq(x, out))


def _unless(other_wins: sp.Expr, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """A max/min side's partial: 0 where the other side wins, 1/2 at a tie, else 1."""
    return F.where(other_wins, 0, F.where(F.eq(a, b), sp.S.Half, 1))


def _ties(x: sp.Expr, out: sp.Expr) -> sp.Expr:
    """The elements a max/min's gradient goes to: the ties, or the nans if the result
    is nan (PyTorch's evenly_distribute_backward)."""
    # as logic, not a where: the masks stay one byte each (a where casts its branches)
    return F.logical_or(F.logical_and(F.ne(out, out), F.ne(x, x)), F.eq(x, out))


def _evenly_selected(x: sp.Expr, out: sp.Expr) -> sp.Expr:
    # selected, not multiplied, as PyTorch's masked_fill: an inf upstream stays out
    ties = _ties(x, out)
    return F.select(ties, 1 / F.sum_(ties))


def _torch_real_root(t: Any, x: Any, n: Any) -> Any:
    """A real n-th root as a PyTorch user writes it (PyTorch has none): the sign taken
    out where x < 0 (or -0.0, as np.cbrt) and n is odd, then a power. Measured (torch
    2.13): x ** (1/3) alone is nan for every x < 0; sign(x) * abs(x) ** (1/3) has the
    derivative nan at 0 (0 * inf); this form gives x ** (1/n)'s inf at 0 and the real
    root elsewhere."""
    odd = t.signbit(x) & (t.remainder(t.as_tensor(n, dtype=x.dtype), 2) == 1)
    r = t.where(odd, -x, x) ** (1 / n)
    return t.where(odd, -r, r)


def _root_grad(x: sp.Expr, n: sp.Expr, out: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    # As PyTorch computes `_torch_real_root`: the power's rules on a = -x where the
    # root is negative (odd n, x < 0), else a = x. d/dx = (1/n) * a**(1/n - 1): inf at
    # 0 for n > 1, computed from x (out**(1 - n) would overflow with out, for n < 1);
    # d/dn = -out * log(a) / n**2, and 0 where x == 0 and 1/n >= 0 (pow's d/db).
    a = F.where(F.lt(out, 0), -x, x)
    at_zero = F.logical_and(F.eq(x, 0), F.ge(1 / n, 0))
    # a power, never sqrt: SymPy's a**(-1/2) would be computed as 1/sqrt(a), nan at
    # -inf where pow (PyTorch's) gives 0
    exponent = sp.UnevaluatedExpr(1 / n - 1) if n.is_Number else 1 / n - 1
    dx = a**exponent / n
    if not n.is_Number:  # 0 where 1/n == 0, as pow's d/da where its exponent is 0
        dx = F.where(F.eq(1 / n, 0), 0, dx)
    return dx, _unless_number(n, lambda: F.where(at_zero, 0, -out * sp.log(a) / n**2))


def _mp_root(mp: Any, x: Any, n: Any) -> Any:
    if x < 0 and n % 2 == 1:
        return -mp.power(-x, 1 / n)
    value = mp.power(x, 1 / n)  # complex for x < 0 unless 1/n is an integer
    return mp.re(value) if mp.im(value) == 0 else mp.nan


def _log_of(b: sp.Expr) -> sp.Expr:
    """log(b), computed, not evaluated by SymPy where b is a number: log(1) = 0 would
    make 1/(x*log(b)) zoo, log(-2) is complex; NumPy gives inf and nan there."""
    return sp.log(b, evaluate=False) if b.is_Number else sp.log(b)


def _recip(x: sp.Expr) -> sp.Expr:
    """1/x kept whole (not x**-2 when squared): the u of PyTorch's f(1/x), whose
    autograd squares it (the reciprocal's -u**2)."""
    return sp.UnevaluatedExpr(1 / x)


def _unless_number(arg: sp.Expr, partial: Callable[[], sp.Expr]) -> sp.Expr:
    """The partial for `arg`, not built where `arg` is a number (no gradient flows
    into a number; SymPy would evaluate log(0)**2 and fail)."""
    return sp.S.Zero if arg.is_Number else partial()


def _sinc_grad(x: sp.Expr, out: sp.Expr) -> tuple[sp.Expr]:
    # PyTorch's sinc_backward: (pi x cos(pi x) - sin(pi x)) / (x**2 pi), taken as 0
    # (selected) where x**2 pi is 0: at x = 0, and where x**2 underflows
    # (grouped as PyTorch computes it: g * (numerator / square), so that the
    # cancellation in the numerator near 0 rounds the same way)
    px = sp.pi * x
    square = sp.UnevaluatedExpr(x**2 * sp.pi)
    quotient = sp.UnevaluatedExpr((px * sp.cos(px) - sp.sin(px)) / square)
    return (F.select(F.ne(square, 0), quotient),)


RULES: tuple[Rule, ...] = (
    # --- arithmetic: SymPy's own Add, Mul and Pow -------------------------------------
    Rule(
        "add",
        sp.Add,
        "a + b",
        "sum of terms (a - b is a + (-1)*b)",
        public=True,
        grad=lambda *a: tuple(sp.S.One for _ in a[:-1]),
        numpy="{0} + {1}",
        torch=lambda t, a, b: a + b,
        arity=(2, None),
        domain=((-3, 3), (-3, 3)),
        operator="+",
        mpmath=lambda mp, a, b: a + b,
    ),
    Rule(
        "mul",
        sp.Mul,
        "a * b",
        "product of factors (a / b is a * b**-1)",
        public=True,
        grad=_mul_grad,
        numpy="{0} * {1}",
        torch=lambda t, a, b: a * b,
        arity=(2, None),
        domain=((-3, 3), (-3, 3)),
        operator="*",
        mpmath=lambda mp, a, b: a * b,
        # 4*(x + 2) as written: SymPy would distribute the number over the sum
        # 0*x too: SymPy would make it 0
        sympy=lambda a, b: sp.Mul(a, b, evaluate=not (_keeps(a, b) or _keeps(b, a))),
    ),
    Rule(
        "sub",
        None,
        "a - b",
        "difference",
        public=True,
        grad=lambda a, b, out: (sp.S.One, sp.S.NegativeOne),
        numpy="{0} - {1}",
        torch=lambda t, a, b: a - b,
        arity=(2, 2),
        # x - x as written: SymPy would make it 0
        sympy=lambda a, b: (
            a - b
            if a != b
            else sp.Add(a, sp.Mul(-1, b, evaluate=False), evaluate=False)
        ),
        domain=((-3, 3), (-3, 3)),
        operator="-",
        mpmath=lambda mp, a, b: a - b,
    ),
    Rule(
        "neg",
        None,
        "-a",
        "negation",
        public=True,
        grad=lambda a, out: (sp.S.NegativeOne,),
        numpy="-{0}",
        torch=lambda t, a: -a,
        # -(x + 1) as written: SymPy would distribute the sign over the sum
        sympy=lambda a: sp.Mul(sp.S.NegativeOne, a, evaluate=not a.is_Add),
        operator="-",
        mpmath=lambda mp, a: -a,
    ),
    Rule(
        "div",
        None,
        "a / b",
        "quotient",
        public=True,
        # PyTorch: d/da = 1/b; d/db = -(a/b)/b, computed from the quotient itself
        grad=lambda a, b, out: (1 / b, -sp.UnevaluatedExpr(out / b)),
        shown=lambda a, b, out: (1 / b, -a / b**2),
        # PyTorch's forward AD: (da - db * out) / b, one division (-inf, not nan, at
        # b = 0)
        tangent=lambda a, b, out, da, db: (da - db * out) / b,
        numpy="{0} / {1}",
        torch=lambda t, a, b: a / b,
        arity=(2, 2),
        # x/0 and x/x as written: SymPy would make them zoo*x and 1
        sympy=lambda a, b: (
            a / b
            if b != 0 and a != b
            else sp.Mul(a, sp.Pow(b, -1, evaluate=False), evaluate=False)
        ),
        domain=((-3, 3), (0.5, 3)),
        kinks_at=((0.0, 0.0), (1.0, 0.0)),
        operator="/",
        mpmath=lambda mp, a, b: a / b,
    ),
    Rule(
        "pow",
        sp.Pow,
        "a ** b",
        "power; also written a ^ b and pow(a, b)",
        names=("pow",),
        public=True,
        grad=_pow_grad,
        shown=_pow_shown,
        jax=_pow_grad_jax,
        tangent=_pow_tangent,
        kink="d/da is 0 where b == 0; d/db is 0 where a == 0 and b >= 0, as PyTorch "
        "(JAX: d/da is nan at a == b == 0; d/db is nan at a == 0, b < 0)",
        numpy="{0} ** {1}",
        torch=lambda t, a, b: a**b,
        arity=(2, 2),
        domain=((0.2, 3), (-2, 2)),
        kinks_at=((0.0, 2.0), (0.0, 0.5), (2.0, 0.0)),
        operator="**",
        mpmath=lambda mp, a, b: mp.power(a, b),
        # 1**x, 0**x as written: SymPy would make them 1 and a Piecewise-like 0**x
        sympy=lambda a, b: sp.Pow(
            a, b, evaluate=not (a.is_Number and a in (0, 1, -1) and not b.is_Number)
        ),
    ),
    Rule(
        "sqrt",
        None,
        "sqrt(x)",
        "square root",
        names=("sqrt",),
        grad=lambda x, out: (1 / (2 * out),),
        shown=lambda x, out: (1 / (2 * sp.sqrt(x)),),
        numpy="np.sqrt({0})",
        torch=lambda t, x: t.sqrt(x),
        sympy=sp.sqrt,
        domain=((0.1, 5),),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: mp.sqrt(x),
    ),
    Rule(
        "cbrt",
        F.cbrt,
        "cbrt(x)",
        "real cube root: cbrt(-8) = -2",
        names=("cbrt",),
        grad=lambda x, out: (1 / (3 * out**2),),
        shown=lambda x, out: (1 / (3 * F.cbrt(x) ** 2),),
        kink="at 0 the derivative is inf, as PyTorch's x ** (1/3) and sqrt give and "
        "JAX's cbrt (PyTorch has no cbrt; its sign(x) * abs(x) ** (1/3) gives nan: "
        "0 * inf)",
        numpy="np.cbrt({0})",
        latex=r"\sqrt[3]{{{0}}}",
        torch=lambda t, x: _torch_real_root(t, x, 3),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: mp.sign(x) * mp.cbrt(abs(x)),
        torch_composite=True,
    ),
    Rule(
        "root",
        F.root,
        "root(x, n)",
        "real n-th root (n an integer): root(-8, 3) = -2, root(-8, 2) is nan",
        names=("root",),
        arity=(2, 2),
        grad=_root_grad,
        shown=lambda x, n, out: (
            1 / (n * F.root(x, n) ** (n - 1)),
            -F.root(x, n) * sp.log(sp.Abs(x)) / n**2,
        ),
        kink="at 0 the derivative is inf for n > 1, as PyTorch's x ** (1/n); x < 0 "
        "gives -root(-x, n) for an odd integer n, else nan, as x ** (1/n) (n is meant "
        "to be a constant: d/dn is that of abs(x) ** (1/n), x's sign kept)",
        numpy="_root({0}, {1})",
        latex=r"\sqrt[{1}]{{{0}}}",
        torch=_torch_real_root,
        # n = 3 at random points: odd roots of negative x; other n at the kinks
        domain=((-3, 3), (3, 3)),
        kinks_at=((0.0, 3.0), (0.0, 2.0), (-8.0, 2.0), (0.0, 1.0)),
        mpmath=_mp_root,
        torch_composite=True,
    ),
    # --- piecewise constant
    Rule(
        "abs",
        sp.Abs,
        "abs(x)",
        "absolute value",
        names=("abs",),
        grad=lambda x, out: (sp.sign(x),),
        jax=lambda x, out: (F.ge(x, 0) - F.lt(x, 0),),
        kink="abs'(0) is taken as 0, as PyTorch does (JAX: 1)",
        numpy="np.abs({0})",
        torch=lambda t, x: t.abs(x),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: abs(x),
        kinks=lambda x: ((x, 0.0, False),),
    ),
    Rule(
        "sign",
        sp.sign,
        "sign(x)",
        "sign: -1, 0 or 1",
        names=("sign",),
        grad=_zero,
        kink="piecewise constant: derivative 0 everywhere, the jump at 0 included",
        numpy="_sign({0})",
        torch=lambda t, x: t.sign(x),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: mp.sign(x),
        kinks=lambda x: ((x, 0.0, False),),
    ),
    Rule(
        "floor",
        sp.floor,
        "floor(x)",
        "round down",
        names=("floor",),
        grad=_zero,
        kink="piecewise constant: derivative 0 everywhere, at the jumps too",
        numpy="np.floor({0})",
        torch=lambda t, x: t.floor(x),
        kinks_at=((1.0,),),
        mpmath=lambda mp, x: mp.floor(x),
        kinks=lambda x: ((x, 0.0, True),),
    ),
    Rule(
        "ceil",
        sp.ceiling,
        "ceil(x)",
        "round up",
        names=("ceil",),
        grad=_zero,
        kink="piecewise constant: derivative 0 everywhere, at the jumps too",
        numpy="np.ceil({0})",
        torch=lambda t, x: t.ceil(x),
        kinks_at=((1.0,),),
        mpmath=lambda mp, x: mp.ceil(x),
        kinks=lambda x: ((x, 0.0, True),),
    ),
    Rule(
        "round",
        F.round_,
        "round(x)",
        "round half to even",
        names=("round",),
        grad=_zero,
        kink="piecewise constant: derivative 0 everywhere, at the jumps too",
        numpy="np.round({0})",
        latex=r"\operatorname{{round}}\left({0}\right)",
        torch=lambda t, x: t.round(x),
        kinks_at=((0.5,),),
        mpmath=lambda mp, x: mp.nint(x),  # half to even, as np.round
        kinks=lambda x: ((x, 0.5, True),),
    ),
    # --- exponentials and logarithms
    Rule(
        "exp",
        sp.exp,
        "exp(x)",
        "e to the x",
        names=("exp",),
        grad=lambda x, out: (out,),
        numpy="np.exp({0})",
        torch=lambda t, x: t.exp(x),
        mpmath=lambda mp, x: mp.exp(x),
    ),
    Rule(
        "exp2",
        F.exp2,
        "exp2(x)",
        "2 to the x",
        names=("exp2",),
        grad=lambda x, out: (out * sp.log(2),),
        numpy="np.exp2({0})",
        latex=r"2^{{{0}}}",
        torch=lambda t, x: t.exp2(x),
        mpmath=lambda mp, x: mp.power(2, x),
    ),
    Rule(
        "expm1",
        F.expm1,
        "expm1(x)",
        "exp(x) - 1, exact near 0",
        names=("expm1",),
        grad=lambda x, out: (out + 1,),
        shown=lambda x, out: (sp.exp(x),),
        numpy="np.expm1({0})",
        latex=r"\operatorname{{expm1}}\left({0}\right)",
        torch=lambda t, x: t.expm1(x),
        mpmath=lambda mp, x: mp.expm1(x),
    ),
    Rule(
        "log",
        sp.log,
        "log(x)",
        "natural logarithm",
        names=("log",),
        grad=lambda x, out: (1 / x,),
        numpy="np.log({0})",
        torch=lambda t, x: t.log(x),
        domain=((0.1, 5),),
        mpmath=lambda mp, x: mp.log(x),
    ),
    Rule(
        "log2",
        F.log2,
        "log2(x)",
        "base-2 logarithm",
        names=("log2",),
        grad=lambda x, out: (1 / (x * sp.log(2)),),
        numpy="np.log2({0})",
        latex=r"\log_{{2}}\left({0}\right)",
        torch=lambda t, x: t.log2(x),
        domain=((0.1, 5),),
        mpmath=lambda mp, x: mp.log(x, 2),
    ),
    Rule(
        "log10",
        F.log10,
        "log10(x)",
        "base-10 logarithm",
        names=("log10",),
        grad=lambda x, out: (1 / (x * sp.log(10)),),
        numpy="np.log10({0})",
        latex=r"\log_{{10}}\left({0}\right)",
        torch=lambda t, x: t.log10(x),
        domain=((0.1, 5),),
        mpmath=lambda mp, x: mp.log10(x),
    ),
    Rule(
        "log1p",
        F.log1p,
        "log1p(x)",
        "log(1 + x), exact near 0",
        names=("log1p",),
        grad=lambda x, out: (1 / (x + 1),),
        numpy="np.log1p({0})",
        latex=r"\operatorname{{log1p}}\left({0}\right)",
        torch=lambda t, x: t.log1p(x),
        domain=((-0.9, 5),),
        mpmath=lambda mp, x: mp.log1p(x),
    ),
    Rule(
        "log_base",
        F.log_base,
        "log(x, base)",
        "logarithm to a base, log(x) / log(base)",
        names=("log",),
        arity=(2, 2),
        # as PyTorch's log(x) / log(base): d/dbase through the division's
        # -(out / log(base)) (computed from the quotient), then log's 1/base
        # in PyTorch's order, the upstream divided first: (g / log(b)) / x and
        # (-g * (out / log(b))) / b, so that no 1/(x*log(b)) overflows on its own
        grad=lambda x, b, out: (
            sp.UnevaluatedExpr(UPSTREAM / _log_of(b)) / x,
            _unless_number(
                b, lambda: -(UPSTREAM * sp.UnevaluatedExpr(out / sp.log(b))) / b
            ),
        ),
        shown=lambda x, b, out: (
            1 / (x * _log_of(b)),
            _unless_number(b, lambda: -sp.log(x) / (b * sp.log(b) ** 2)),
        ),
        # forward mode as PyTorch's for log(x) / log(b): one division, (-inf, not
        # nan, at b = 1)
        tangent=lambda x, b, out, dx, db: (dx / x - db / b * out) / _log_of(b),
        numpy="_log_base({0}, {1})",
        latex=r"\log_{{{1}}}\left({0}\right)",
        torch=lambda t, x, b: t.log(x) / t.log(b),
        domain=((0.1, 5), (1.5, 5)),
        kinks_at=((0.0, 2.0), (2.0, 1.0)),
        mpmath=lambda mp, x, b: mp.log(x) / mp.log(b),
        torch_composite=True,
    ),
    # --- trigonometric and hyperbolic
    Rule(
        "sin",
        sp.sin,
        "sin(x)",
        "sine",
        names=("sin",),
        grad=lambda x, out: (sp.cos(x),),
        numpy="np.sin({0})",
        torch=lambda t, x: t.sin(x),
        mpmath=lambda mp, x: mp.sin(x),
    ),
    Rule(
        "cos",
        sp.cos,
        "cos(x)",
        "cosine",
        names=("cos",),
        grad=lambda x, out: (-sp.sin(x),),
        numpy="np.cos({0})",
        torch=lambda t, x: t.cos(x),
        mpmath=lambda mp, x: mp.cos(x),
    ),
    Rule(
        "tan",
        sp.tan,
        "tan(x)",
        "tangent",
        names=("tan",),
        grad=lambda x, out: (1 + out**2,),
        shown=lambda x, out: (sp.tan(x) ** 2 + 1,),
        numpy="np.tan({0})",
        torch=lambda t, x: t.tan(x),
        domain=((-1.4, 1.4),),
        mpmath=lambda mp, x: mp.tan(x),
    ),
    Rule(
        "asin",
        sp.asin,
        "asin(x)",
        "inverse sine",
        names=("asin", "arcsin"),
        grad=lambda x, out: (1 / sp.sqrt(1 - x**2),),
        numpy="np.arcsin({0})",
        torch=lambda t, x: t.asin(x),
        domain=((-0.95, 0.95),),
        mpmath=lambda mp, x: mp.asin(x),
    ),
    Rule(
        "acos",
        sp.acos,
        "acos(x)",
        "inverse cosine",
        names=("acos", "arccos"),
        grad=lambda x, out: (-1 / sp.sqrt(1 - x**2),),
        numpy="np.arccos({0})",
        torch=lambda t, x: t.acos(x),
        domain=((-0.95, 0.95),),
        mpmath=lambda mp, x: mp.acos(x),
    ),
    Rule(
        "atan",
        sp.atan,
        "atan(x)",
        "inverse tangent",
        names=("atan", "arctan"),
        grad=lambda x, out: (1 / (x**2 + 1),),
        numpy="np.arctan({0})",
        torch=lambda t, x: t.atan(x),
        mpmath=lambda mp, x: mp.atan(x),
    ),
    Rule(
        "atan2",
        sp.atan2,
        "atan2(y, x)",
        "angle of the point (x, y)",
        names=("atan2", "arctan2"),
        arity=(2, 2),
        grad=lambda y, x, out: (
            x * F.safe_recip(x**2 + y**2),
            -y * F.safe_recip(x**2 + y**2),
        ),
        shown=lambda y, x, out: (x / (x**2 + y**2), -y / (x**2 + y**2)),
        jax=lambda y, x, out: (x / (x**2 + y**2), -y / (x**2 + y**2)),
        kink="at the origin the gradient is 0, as PyTorch (its 1/(x**2 + y**2) is "
        "taken as 0 there; JAX: nan)",
        numpy="np.arctan2({0}, {1})",
        torch=lambda t, y, x: t.atan2(y, x),
        domain=((-3, 3), (0.2, 3)),
        kinks_at=((0.0, 0.0),),
        mpmath=lambda mp, y, x: mp.atan2(y, x),
    ),
    Rule(
        "hypot",
        F.hypot,
        "hypot(x, y)",
        "sqrt(x**2 + y**2) without overflow",
        names=("hypot",),
        arity=(2, 2),
        grad=lambda x, y, out: (x / out, y / out),
        # JAX (measured): 1/2 each at the origin, where its max/min split the tie
        jax=lambda x, y, out: (
            F.where(F.eq(out, 0), sp.S.Half, x / out),
            F.where(F.eq(out, 0), sp.S.Half, y / out),
        ),
        kink="at the origin the gradient is nan (0/0), as PyTorch (JAX: 1/2 each)",
        kinks_at=((0.0, 0.0),),
        numpy="np.hypot({0}, {1})",
        latex=r"\operatorname{{hypot}}\left({0}, {1}\right)",
        torch=lambda t, x, y: t.hypot(x, y),
        domain=((0.2, 3), (-3, 3)),
        mpmath=lambda mp, x, y: mp.hypot(x, y),
    ),
    Rule(
        "sinh",
        sp.sinh,
        "sinh(x)",
        "hyperbolic sine",
        names=("sinh",),
        grad=lambda x, out: (sp.cosh(x),),
        numpy="np.sinh({0})",
        torch=lambda t, x: t.sinh(x),
        mpmath=lambda mp, x: mp.sinh(x),
    ),
    Rule(
        "cosh",
        sp.cosh,
        "cosh(x)",
        "hyperbolic cosine",
        names=("cosh",),
        grad=lambda x, out: (sp.sinh(x),),
        numpy="np.cosh({0})",
        torch=lambda t, x: t.cosh(x),
        mpmath=lambda mp, x: mp.cosh(x),
    ),
    Rule(
        "tanh",
        sp.tanh,
        "tanh(x)",
        "hyperbolic tangent",
        names=("tanh",),
        grad=lambda x, out: (1 - out**2,),
        shown=lambda x, out: (1 - sp.tanh(x) ** 2,),
        numpy="np.tanh({0})",
        torch=lambda t, x: t.tanh(x),
        mpmath=lambda mp, x: mp.tanh(x),
    ),
    Rule(
        "asinh",
        sp.asinh,
        "asinh(x)",
        "inverse hyperbolic sine",
        names=("asinh", "arcsinh"),
        grad=lambda x, out: (1 / sp.sqrt(x**2 + 1),),
        numpy="np.arcsinh({0})",
        torch=lambda t, x: t.asinh(x),
        mpmath=lambda mp, x: mp.asinh(x),
    ),
    Rule(
        "acosh",
        sp.acosh,
        "acosh(x)",
        "inverse hyperbolic cosine",
        names=("acosh", "arccosh"),
        grad=lambda x, out: (1 / sp.sqrt(x**2 - 1),),
        numpy="np.arccosh({0})",
        torch=lambda t, x: t.acosh(x),
        domain=((1.1, 4),),
        mpmath=lambda mp, x: mp.acosh(x),
    ),
    Rule(
        "atanh",
        sp.atanh,
        "atanh(x)",
        "inverse hyperbolic tangent",
        names=("atanh", "arctanh"),
        grad=lambda x, out: (1 / (1 - x**2),),
        numpy="np.arctanh({0})",
        torch=lambda t, x: t.atanh(x),
        domain=((-0.95, 0.95),),
        mpmath=lambda mp, x: mp.atanh(x),
    ),
    # --- reciprocal trigonometric and hyperbolic: PyTorch has none of them; each
    # reference is what a PyTorch user writes (1 / cos(x), acos(1 / x), ...), and each
    # rule computes what PyTorch's autograd computes for it (the reciprocal's
    # -out**2, then the outer function's rule at u = 1/x), overflow and underflow
    # included; `shown` is the textbook form
    Rule(
        "sec",
        sp.sec,
        "sec(x)",
        "secant, 1 / cos(x)",
        names=("sec",),
        grad=lambda x, out: (sp.sin(x) * out**2,),
        shown=lambda x, out: (sp.tan(x) * sp.sec(x),),
        numpy="1 / np.cos({0})",
        torch=lambda t, x: 1 / t.cos(x),
        domain=((-1.4, 1.4),),
        mpmath=lambda mp, x: mp.sec(x),
        torch_composite=True,
    ),
    Rule(
        "csc",
        sp.csc,
        "csc(x)",
        "cosecant, 1 / sin(x)",
        names=("csc",),
        grad=lambda x, out: (-sp.cos(x) * out**2,),
        shown=lambda x, out: (-sp.cot(x) * sp.csc(x),),
        numpy="1 / np.sin({0})",
        torch=lambda t, x: 1 / t.sin(x),
        domain=((0.2, 2.9),),
        kinks_at=((0.0,),),  # the pole: -inf
        mpmath=lambda mp, x: mp.csc(x),
        torch_composite=True,
    ),
    Rule(
        "cot",
        sp.cot,
        "cot(x)",
        "cotangent, 1 / tan(x)",
        names=("cot",),
        grad=lambda x, out: (-(out**2) * (1 + sp.tan(x) ** 2),),
        shown=lambda x, out: (-(sp.csc(x) ** 2),),
        numpy="1 / np.tan({0})",
        torch=lambda t, x: 1 / t.tan(x),
        domain=((0.2, 2.9),),
        kinks_at=((0.0,),),  # the pole: -inf
        mpmath=lambda mp, x: mp.cot(x),
        torch_composite=True,
    ),
    Rule(
        "asec",
        sp.asec,
        "asec(x)",
        "inverse secant, acos(1 / x), for abs(x) >= 1",
        names=("asec", "arcsec"),
        grad=lambda x, out: (_recip(x) ** 2 / sp.sqrt(1 - _recip(x) ** 2),),
        shown=lambda x, out: (1 / (sp.Abs(x) * sp.sqrt(x**2 - 1)),),
        numpy="np.arccos(1 / {0})",
        torch=lambda t, x: t.acos(1 / x),
        domain=((1.1, 4),),
        kinks_at=((1.0,), (-1.0,)),  # the ends of its domain: inf
        mpmath=lambda mp, x: mp.asec(x),
        torch_composite=True,
    ),
    Rule(
        "acsc",
        sp.acsc,
        "acsc(x)",
        "inverse cosecant, asin(1 / x), for abs(x) >= 1",
        names=("acsc", "arccsc"),
        grad=lambda x, out: (-(_recip(x) ** 2) / sp.sqrt(1 - _recip(x) ** 2),),
        shown=lambda x, out: (-1 / (sp.Abs(x) * sp.sqrt(x**2 - 1)),),
        numpy="np.arcsin(1 / {0})",
        torch=lambda t, x: t.asin(1 / x),
        domain=((1.1, 4),),
        kinks_at=((1.0,), (-1.0,)),  # the ends of its domain: -inf
        mpmath=lambda mp, x: mp.acsc(x),
        torch_composite=True,
    ),
    Rule(
        "acot",
        sp.acot,
        "acot(x)",
        "inverse cotangent, atan(1 / x): acot(0) = pi/2, acot(-1) = -pi/4",
        names=("acot", "arccot"),
        grad=lambda x, out: (-(_recip(x) ** 2) / (1 + _recip(x) ** 2),),
        shown=lambda x, out: (-1 / (x**2 + 1),),
        kink="acot jumps at 0 (from -pi/2 to pi/2 = acot(0)): the derivative there is "
        "nan, as PyTorch's atan(1/x) gives (inf/inf; also where abs(x) < 1e-154 and "
        "(1/x)**2 overflows)",
        numpy="np.arctan(1 / {0})",
        torch=lambda t, x: t.atan(1 / x),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: mp.acot(x),
        kinks=lambda x: ((x, 0.0, False),),
        torch_composite=True,
    ),
    Rule(
        "sech",
        sp.sech,
        "sech(x)",
        "hyperbolic secant, 1 / cosh(x)",
        names=("sech",),
        # PyTorch's -out**2 * sinh(x), but 0 where out is 0 (abs(x) > 710: PyTorch's
        # is 0 * inf = nan there)
        grad=lambda x, out: (F.select(F.ne(out, 0), -(out**2) * sp.sinh(x)),),
        shown=lambda x, out: (-sp.tanh(x) * sp.sech(x),),
        numpy="1 / np.cosh({0})",
        torch=lambda t, x: 1 / t.cosh(x),
        mpmath=lambda mp, x: mp.sech(x),
        torch_composite=True,
    ),
    Rule(
        "csch",
        sp.csch,
        "csch(x)",
        "hyperbolic cosecant, 1 / sinh(x)",
        names=("csch",),
        # PyTorch's -out**2 * cosh(x), but 0 where out is 0 (abs(x) > 710: PyTorch's
        # is 0 * inf = nan there)
        grad=lambda x, out: (F.select(F.ne(out, 0), -(out**2) * sp.cosh(x)),),
        shown=lambda x, out: (-sp.coth(x) * sp.csch(x),),
        numpy="1 / np.sinh({0})",
        torch=lambda t, x: 1 / t.sinh(x),
        domain=((0.2, 3),),
        kinks_at=((0.0,),),  # the pole: -inf
        mpmath=lambda mp, x: mp.csch(x),
        torch_composite=True,
    ),
    Rule(
        "coth",
        sp.coth,
        "coth(x)",
        "hyperbolic cotangent, 1 / tanh(x)",
        names=("coth",),
        grad=lambda x, out: (-(out**2) * (1 - sp.tanh(x) ** 2),),
        shown=lambda x, out: (-(sp.csch(x) ** 2),),
        numpy="1 / np.tanh({0})",
        torch=lambda t, x: 1 / t.tanh(x),
        domain=((0.2, 3),),
        kinks_at=((0.0,),),  # the pole: -inf
        mpmath=lambda mp, x: mp.coth(x),
        torch_composite=True,
    ),
    Rule(
        "asech",
        sp.asech,
        "asech(x)",
        "inverse hyperbolic secant, acosh(1 / x), for 0 < x <= 1",
        names=("asech", "arcsech"),
        grad=lambda x, out: (-(_recip(x) ** 2) / sp.sqrt(_recip(x) ** 2 - 1),),
        shown=lambda x, out: (-1 / (x * sp.sqrt(1 - x**2)),),
        kink="at 0 the derivative is nan, as PyTorch's acosh(1/x) gives (inf/inf; "
        "also where abs(x) < 1e-154 and (1/x)**2 overflows)",
        numpy="np.arccosh(1 / {0})",
        torch=lambda t, x: t.acosh(1 / x),
        domain=((0.1, 0.95),),
        kinks_at=((1.0,), (0.0,)),  # the ends of its domain: -inf, nan
        mpmath=lambda mp, x: mp.asech(x),
        torch_composite=True,
    ),
    Rule(
        "acsch",
        sp.acsch,
        "acsch(x)",
        "inverse hyperbolic cosecant, asinh(1 / x)",
        names=("acsch", "arccsch"),
        grad=lambda x, out: (-(_recip(x) ** 2) / sp.sqrt(_recip(x) ** 2 + 1),),
        shown=lambda x, out: (-1 / (sp.Abs(x) * sp.sqrt(x**2 + 1)),),
        kink="at 0, its pole, the derivative is nan, as PyTorch's asinh(1/x) gives "
        "(inf/inf; also where abs(x) < 1e-154 and (1/x)**2 overflows)",
        numpy="np.arcsinh(1 / {0})",
        torch=lambda t, x: t.asinh(1 / x),
        domain=((0.2, 3),),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: mp.acsch(x),
        torch_composite=True,
    ),
    Rule(
        "acoth",
        sp.acoth,
        "acoth(x)",
        "inverse hyperbolic cotangent, atanh(1 / x), for abs(x) > 1",
        names=("acoth", "arccoth"),
        grad=lambda x, out: (-(_recip(x) ** 2) / (1 - _recip(x) ** 2),),
        shown=lambda x, out: (1 / (1 - x**2),),
        numpy="np.arctanh(1 / {0})",
        torch=lambda t, x: t.atanh(1 / x),
        domain=((1.1, 4),),
        kinks_at=((1.0,), (-1.0,)),  # the ends of its domain: -inf
        mpmath=lambda mp, x: mp.acoth(x),
        torch_composite=True,
    ),
    # --- special functions
    Rule(
        "sinc",
        F.sinc,
        "sinc(x)",
        "normalised sinc, sin(pi x) / (pi x), and 1 at 0, as numpy.sinc and torch.sinc",
        names=("sinc",),
        grad=_sinc_grad,
        shown=lambda x, out: ((sp.cos(sp.pi * x) - F.sinc(x)) / x,),
        kink="at 0, where the formula is 0/0, the derivative is its limit 0, as "
        "PyTorch (0 wherever x**2 underflows, as PyTorch)",
        numpy="np.sinc({0})",
        latex=r"\operatorname{{sinc}}\left({0}\right)",
        torch=lambda t, x: t.sinc(x),
        kinks_at=((0.0,), (1e-200,)),
        mpmath=lambda mp, x: mp.sincpi(x),
    ),
    Rule(
        "erf",
        sp.erf,
        "erf(x)",
        "error function",
        names=("erf",),
        grad=lambda x, out: (2 / sp.sqrt(sp.pi) * sp.exp(-(x**2)),),
        numpy="_erf({0})",
        torch=lambda t, x: t.erf(x),
        mpmath=lambda mp, x: mp.erf(x),
    ),
    Rule(
        "erfc",
        sp.erfc,
        "erfc(x)",
        "complementary error function, 1 - erf(x)",
        names=("erfc",),
        grad=lambda x, out: (-2 / sp.sqrt(sp.pi) * sp.exp(-(x**2)),),
        numpy="_erfc({0})",
        torch=lambda t, x: t.erfc(x),
        mpmath=lambda mp, x: mp.erfc(x),
    ),
    Rule(
        "erfinv",
        sp.erfinv,
        "erfinv(x)",
        "inverse error function",
        names=("erfinv",),
        grad=lambda x, out: (sp.sqrt(sp.pi) / 2 * sp.exp(out**2),),
        shown=lambda x, out: (sp.sqrt(sp.pi) / 2 * sp.exp(sp.erfinv(x) ** 2),),
        numpy="_erfinv({0})",
        torch=lambda t, x: t.erfinv(x),
        domain=((-0.95, 0.95),),
        mpmath=lambda mp, x: mp.erfinv(x),
    ),
    Rule(
        "lgamma",
        sp.loggamma,
        "lgamma(x)",
        "log of the absolute gamma function",
        names=("lgamma", "gammaln"),
        grad=lambda x, out: (sp.polygamma(0, x),),
        # JAX's digamma is nan at 0 (PyTorch's is -inf); both are nan at -1, -2, ...
        jax=lambda x, out: (F.where(F.eq(x, 0), sp.nan, sp.polygamma(0, x)),),
        kink="at 0 the derivative is -inf, as PyTorch (JAX: nan)",
        kinks_at=((0.0,),),
        numpy="_lgamma({0})",
        torch=lambda t, x: t.lgamma(x),
        latex=r"\ln\Gamma\left({0}\right)",
        domain=((0.1, 6),),
        mpmath=lambda mp, x: mp.log(abs(mp.gamma(x))),
    ),
    Rule(
        "digamma",
        None,
        "digamma(x)",
        "digamma, the derivative of lgamma (polygamma(0, x))",
        names=("digamma",),
        grad=lambda x, out: (sp.polygamma(1, x),),
        numpy="_digamma({0})",
        # torch.polygamma(1, x), digamma's derivative, is good to about 5e-10 relative
        # on (0.1, 6); ours is within 1e-15 of mpmath (tests/test_runtime_special.py)
        torch_rtol=1e-9,
        torch=lambda t, x: t.digamma(x),
        sympy=lambda x: sp.polygamma(0, x),
        domain=((0.1, 6),),
        mpmath=lambda mp, x: mp.digamma(x),
    ),
    Rule(
        "trigamma",
        None,
        "trigamma(x)",
        "trigamma, the derivative of digamma (polygamma(1, x))",
        names=("trigamma",),
        grad=lambda x, out: (sp.polygamma(2, x),),
        numpy="_trigamma({0})",
        torch_rtol=1e-9,
        torch=lambda t, x: t.polygamma(1, x),
        sympy=lambda x: sp.polygamma(1, x),
        domain=((0.1, 6),),
        mpmath=lambda mp, x: mp.polygamma(1, x),
    ),
    Rule(
        "polygamma",
        sp.polygamma,
        "polygamma(n, x)",
        "the n-th derivative of digamma (n = 0, 1, 2; inside derivative rules)",
        names=(),
        arity=(2, 2),
        grad=lambda n, x, out: (sp.S.Zero, sp.polygamma(n + 1, x)),
        numpy="_polygamma({0}, {1})",
        torch_rtol=1e-9,
        fixed_args={0: 2},
        torch=lambda t, n, x: t.polygamma(int(n), x),
        domain=((2, 2), (0.1, 6)),
        mpmath=lambda mp, n, x: mp.polygamma(int(n), x),
        used_by=("lgamma", "digamma", "trigamma"),
    ),
    # --- activations
    Rule(
        "sigmoid",
        F.sigmoid,
        "sigmoid(x)",
        "logistic function 1 / (1 + exp(-x))",
        names=("sigmoid", "expit"),
        grad=lambda x, out: (out * (1 - out),),
        shown=lambda x, out: (F.sigmoid(x) * (1 - F.sigmoid(x)),),
        numpy="_sigmoid({0})",
        latex=r"\sigma\left({0}\right)",
        torch=lambda t, x: t.sigmoid(x),
        domain=((-6, 6),),
        mpmath=lambda mp, x: 1 / (1 + mp.exp(-x)),
    ),
    Rule(
        "softplus",
        F.softplus,
        "softplus(x)",
        "log(1 + exp(x)); x itself above 20, as PyTorch",
        names=("softplus",),
        # at x = 20 exactly PyTorch's derivative is exp(20)/(exp(20) + 1) and its
        # double backward 0 (a number there: no slope)
        grad=lambda x, out: (
            F.where(
                F.eq(x, 20),
                sp.exp(20) / (sp.exp(20) + 1),
                F.where(F.gt(x, 20), 1, sp.exp(x) / (sp.exp(x) + 1)),
            ),
        ),
        shown=lambda x, out: (F.sigmoid(x),),
        kink="PyTorch's threshold: above x = 20, softplus(x) = x and its derivative "
        "is 1",
        numpy="_softplus({0})",
        latex=r"\operatorname{{softplus}}\left({0}\right)",
        torch=lambda t, x: t.nn.functional.softplus(x),
        domain=((-6, 6),),
        kinks_at=((20.0,), (20.5,), (-800.0,), (800.0,)),
        mpmath=lambda mp, x: x if x > 20 else mp.log1p(mp.exp(x)),
        kinks=lambda x: ((x, 20.0, False),),  # PyTorch's threshold
    ),
    Rule(
        "relu",
        F.relu,
        "relu(x)",
        "max(x, 0)",
        names=("relu",),
        # PyTorch's threshold_backward: 0 where x <= 0, so a nan x passes the gradient
        grad=lambda x, out: (F.logical_not(F.le(x, 0)),),
        shown=lambda x, out: (F.gt(x, 0),),
        kink="relu'(0) is taken as 0, as PyTorch and JAX do "
        "(max(x, 0) gives 1/2 there, clip(x, 0, inf) gives 1)",
        numpy="np.maximum({0}, 0)",
        latex=r"\operatorname{{relu}}\left({0}\right)",
        torch=lambda t, x: t.relu(x),
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: max(x, mp.mpf(0)),
        kinks=lambda x: ((x, 0.0, False),),
    ),
    Rule(
        "silu",
        F.silu,
        "silu(x)",
        "x * sigmoid(x) (swish)",
        names=("silu", "swish"),
        grad=lambda x, out: (F.sigmoid(x) * (1 + x * (1 - F.sigmoid(x))),),
        numpy="{0} * _sigmoid({0})",
        latex=r"\operatorname{{silu}}\left({0}\right)",
        torch=lambda t, x: t.nn.functional.silu(x),
        domain=((-6, 6),),
        mpmath=lambda mp, x: x / (1 + mp.exp(-x)),
    ),
    # --- kinked functions of several arguments
    Rule(
        "clip",
        F.clip,
        "clip(x, lo, hi)",
        "x limited to [lo, hi] (alias clamp)",
        names=("clip", "clamp"),
        arity=(3, 3),
        grad=_clip_grad,
        jax=_clip_grad_jax,
        shown=lambda x, lo, hi, out: (
            F.ge(x, lo) * F.le(x, hi),
            F.lt(x, lo),
            F.gt(x, hi),
        ),
        kink="at x == lo or x == hi the derivative is 1, as PyTorch (JAX: 1/2); "
        "where lo > hi the result is hi",
        # PyTorch's forward AD (clamp_jvp), which differs from its backward where
        # lo == hi: clip(y, x, x) moves with x
        tangent=lambda x, lo, hi, out, dx, dlo, dhi: F.where(
            F.gt(lo, hi),
            dhi,
            F.where(F.lt(x, lo), dlo, F.where(F.gt(x, hi), dhi, dx)),
        ),
        numpy="_clip({0}, {1}, {2})",
        latex=r"\operatorname{{clip}}\left({0}, {1}, {2}\right)",
        # clamp does not broadcast its input to its bounds: expand it first
        torch=lambda t, x, lo, hi: t.clamp(
            x.expand(t.broadcast_shapes(x.shape, lo.shape, hi.shape)), lo, hi
        ),
        domain=((-3, 3), (-2, -0.5), (0.5, 2)),
        kinks_at=((1.5, 1.5, 5.5), (5.5, 1.5, 5.5), (0.0, 0.0, 1.0), (1.0, 2.0, 1.0)),
        mpmath=lambda mp, x, lo, hi: min(
            max(x, lo), hi
        ),  # hi where lo > hi, as PyTorch
        kinks=lambda x, lo, hi: ((x - lo, 0.0, False), (x - hi, 0.0, False)),
    ),
    Rule(
        "maximum",
        F.maximum,
        "max(a, b, ...)",
        "elementwise maximum (alias maximum)",
        names=("max", "maximum"),
        arity=(2, None),
        build=_fold(F.maximum),
        # PyTorch: the whole gradient unless the other side is larger, half at a tie
        # (so both sides get it where either is nan)
        grad=lambda a, b, out: (_unless(F.lt(a, b), a, b), _unless(F.gt(a, b), a, b)),
        shown=lambda a, b, out: (
            F.gt(a, b) + F.eq(a, b) / 2,
            F.lt(a, b) + F.eq(a, b) / 2,
        ),
        kink="at a tie a == b each side gets 1/2, as PyTorch and JAX",
        numpy="np.maximum({0}, {1})",
        latex=r"\max\left({0}, {1}\right)",
        torch=lambda t, a, b: t.maximum(a, b),
        domain=((-3, 3), (-3, 3)),
        kinks_at=((1.0, 1.0), (0.0, 0.0)),
        mpmath=lambda mp, a, b: max(a, b),
        kinks=lambda a, b: ((a - b, 0.0, False),),
    ),
    Rule(
        "minimum",
        F.minimum,
        "min(a, b, ...)",
        "elementwise minimum (alias minimum)",
        names=("min", "minimum"),
        arity=(2, None),
        build=_fold(F.minimum),
        grad=lambda a, b, out: (_unless(F.gt(a, b), a, b), _unless(F.lt(a, b), a, b)),
        shown=lambda a, b, out: (
            F.lt(a, b) + F.eq(a, b) / 2,
            F.gt(a, b) + F.eq(a, b) / 2,
        ),
        kink="at a tie a == b each side gets 1/2, as PyTorch and JAX",
        numpy="np.minimum({0}, {1})",
        latex=r"\min\left({0}, {1}\right)",
        torch=lambda t, a, b: t.minimum(a, b),
        domain=((-3, 3), (-3, 3)),
        kinks_at=((1.0, 1.0), (0.0, 0.0)),
        mpmath=lambda mp, a, b: min(a, b),
        kinks=lambda a, b: ((a - b, 0.0, False),),
    ),
    Rule(
        "where",
        F.where,
        "where(cond, a, b)",
        "a where cond is true (nonzero), else b",
        names=("where",),
        arity=(3, 3),
        grad=lambda c, a, b, out: (sp.S.Zero, F.where(c, 1, 0), F.where(c, 0, 1)),
        kink="the branch not taken sends nothing into the gradient: the derivative is "
        "where(cond, a', b'), also where a' or b' is inf or nan off its branch "
        "(PyTorch and JAX give nan there, issues 68425 and 347, unless you write the "
        "double-where idiom); cond gets no gradient",
        numpy="np.where({0}, {1}, {2})",
        mask_args=(0,),
        latex=r"\begin{{cases}} {1} & \text{{if }} {0} \\ {2} & "
        r"\text{{otherwise}} \end{{cases}}",
        torch=lambda t, c, a, b: t.where(c != 0, a, b),
        domain=((-1, 1), (-3, 3), (-3, 3)),
        mpmath=lambda mp, c, a, b: a if c != 0 else b,
        kinks=lambda c, a, b: ((c, 0.0, False),),
        kinks_at=((0.0, 1.0, 2.0), (1.0, 1.0, 2.0)),
    ),
    # --- masks: comparisons and logic
    *(
        Rule(
            name,
            cls,
            f"a {op} b",
            f"1 where a {op} b, else 0",
            arity=(2, 2),
            grad=_zero,
            kink="piecewise constant: derivative 0 (PyTorch's comparisons "
            "carry no gradient at all)",
            numpy=f"({{0}} {op} {{1}})",
            mask=True,
            public=True,
            latex=f"\\left[{{0}} {tex} {{1}}\\right]",
            torch=(lambda o: lambda t, a, b: getattr(t, o)(a, b))(tname),
            domain=((-3, 3), (-3, 3)),
            kinks_at=((1.0, 1.0),),
            operator=op,
            # exact: mpmath compares its numbers as Python compares floats
            mpmath=(lambda o: lambda mp, a, b: int(getattr(operator, o)(a, b)))(tname),
            kinks=lambda a, b: ((a - b, 0.0, False),),
        )
        for name, cls, op, tex, tname in (
            ("lt", F.lt, "<", "<", "lt"),
            ("le", F.le, "<=", r"\le", "le"),
            ("gt", F.gt, ">", ">", "gt"),
            ("ge", F.ge, ">=", r"\ge", "ge"),
            ("eq", F.eq, "==", "=", "eq"),
            ("ne", F.ne, "!=", r"\ne", "ne"),
        )
    ),
    Rule(
        "and",
        F.logical_and,
        "a and b",
        "1 where both are true (nonzero)",
        public=True,
        arity=(2, 2),
        mask=True,
        mask_args=(0, 1),
        grad=_zero,
        kink="piecewise constant: derivative 0",
        numpy="np.logical_and({0}, {1})",
        latex=r"\left[{0} \land {1}\right]",
        torch=lambda t, a, b: t.logical_and(a, b),
        domain=((-1, 1), (-1, 1)),
        operator="and",
        mpmath=lambda mp, a, b: int(a != 0 and b != 0),
        kinks=lambda a, b: ((a, 0.0, False), (b, 0.0, False)),
        kinks_at=((0.0, 1.0), (1.0, 1.0)),
    ),
    Rule(
        "or",
        F.logical_or,
        "a or b",
        "1 where either is true (nonzero)",
        public=True,
        arity=(2, 2),
        mask=True,
        mask_args=(0, 1),
        grad=_zero,
        kink="piecewise constant: derivative 0",
        numpy="np.logical_or({0}, {1})",
        latex=r"\left[{0} \lor {1}\right]",
        torch=lambda t, a, b: t.logical_or(a, b),
        domain=((-1, 1), (-1, 1)),
        operator="or",
        mpmath=lambda mp, a, b: int(a != 0 or b != 0),
        kinks=lambda a, b: ((a, 0.0, False), (b, 0.0, False)),
        kinks_at=((0.0, 0.0), (0.0, 1.0)),
    ),
    Rule(
        "not",
        F.logical_not,
        "not a",
        "1 where a is false (zero)",
        public=True,
        mask=True,
        mask_args=(0,),
        grad=_zero,
        kink="piecewise constant: derivative 0",
        numpy="np.logical_not({0})",
        latex=r"\left[\lnot {0}\right]",
        torch=lambda t, a: t.logical_not(a),
        domain=((-1, 1),),
        operator="not",
        mpmath=lambda mp, a: int(a == 0),
        kinks=lambda a: ((a, 0.0, False),),
        kinks_at=((0.0,),),
    ),
    # --- reductions over all elements
    Rule(
        "sum",
        F.sum_,
        "sum(x)",
        "sum of all elements",
        names=("sum",),
        grad=lambda x, out: (sp.S.One,),
        numpy="np.sum({0})",
        latex=r"\sum {0}",
        torch=lambda t, x: t.sum(x),
        reduction=True,
        mpmath=lambda mp, x: x,  # of a scalar
    ),
    Rule(
        "mean",
        F.mean,
        "mean(x)",
        "mean of all elements",
        names=("mean",),
        grad=lambda x, out: (1 / F.size(x),),
        # sum / size: nan for an empty array (as PyTorch), without NumPy's warning
        numpy="np.sum({0}) / _size({0})",
        latex=r"\operatorname{{mean}}\left({0}\right)",
        torch=lambda t, x: t.mean(x),
        reduction=True,
        mpmath=lambda mp, x: x,  # of a scalar
    ),
    Rule(
        "prod",
        F.prod,
        "prod(x)",
        "product of all elements",
        names=("prod",),
        # with two zeros every partial is 0 whatever the upstream (PyTorch): there
        # only a finite upstream multiplies them (0, never inf * 0), so that the
        # Hessian (the tangent of this) is still exact
        grad=lambda x, out: (
            F.prod_grad(x, out)
            * F.where(
                F.lt(F.sum_(F.eq(x, 0)), 2),
                UPSTREAM,
                F.select(
                    F.logical_and(
                        F.eq(UPSTREAM, UPSTREAM), F.lt(sp.Abs(UPSTREAM), sp.oo)
                    ),
                    UPSTREAM,
                ),
            ),
        ),
        shown=lambda x, out: (out / x,),
        kink="where x has zeros, the exact product of the other elements, as PyTorch",
        numpy="np.prod({0})",
        latex=r"\prod {0}",
        torch=lambda t, x: t.prod(x),
        reduction=True,
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: x,  # of a scalar
    ),
    Rule(
        "amax",
        F.amax,
        "max(x)",
        "largest element",
        names=("max",),
        grad=lambda x, out: (_evenly_selected(x, out),),
        shown=lambda x, out: (_evenly(x, out),),
        kink="ties share the gradient evenly, as PyTorch and JAX",
        numpy="np.max({0})",
        latex=r"\max {0}",
        torch=lambda t, x: t.max(x),
        reduction=True,
        kinks_at=((1.0,),),
        mpmath=lambda mp, x: x,  # of a scalar
    ),
    Rule(
        "amin",
        F.amin,
        "min(x)",
        "smallest element",
        names=("min",),
        grad=lambda x, out: (_evenly_selected(x, out),),
        shown=lambda x, out: (_evenly(x, out),),
        kink="ties share the gradient evenly, as PyTorch and JAX",
        numpy="np.min({0})",
        latex=r"\min {0}",
        torch=lambda t, x: t.min(x),
        reduction=True,
        kinks_at=((1.0,),),
        mpmath=lambda mp, x: x,  # of a scalar
    ),
    Rule(
        "norm",
        F.norm,
        "norm(x)",
        "Euclidean (L2) norm of all elements",
        names=("norm",),
        arity=(1, 2),
        build=_build_norm,
        # (x / norm) * g, 0 where the norm is 0; x / norm first, which is at most 1 in
        # size: neither g * x nor 1 / norm can under- or overflow. The zero norm is
        # selected on the scalar side (x / 1 is x, which is 0 there, times a selected
        # 0): one pass over x for the division and one for the product, no where
        grad=lambda x, out: (
            sp.UnevaluatedExpr(x / F.where(F.ne(out, 0), out, 1))
            * F.select(F.ne(out, 0), UPSTREAM),
        ),
        jax=lambda x, out: (x / out,),
        shown=lambda x, out: (x / out,),
        kink="at x = 0 the gradient is 0, as PyTorch (JAX: nan)",
        numpy="_norm2({0})",
        latex=r"\left\lVert {0} \right\rVert_{{2}}",
        torch=lambda t, x: t.linalg.vector_norm(x),
        reduction=True,
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: abs(x),  # of a scalar
        kinks=lambda x: ((x, 0.0, False),),  # a one-element norm(x) is abs(x)
    ),
    Rule(
        "norm1",
        F.norm1,
        "norm(x, 1)",
        "L1 norm: sum of absolute values",
        public=True,
        grad=lambda x, out: (sp.sign(x),),
        jax=lambda x, out: (F.ge(x, 0) - F.lt(x, 0),),
        kink="0 for elements equal to 0, as PyTorch (JAX: 1)",
        numpy="np.sum(np.abs({0}))",
        latex=r"\left\lVert {0} \right\rVert_{{1}}",
        torch=lambda t, x: t.linalg.vector_norm(x, 1),
        reduction=True,
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: abs(x),  # of a scalar
        kinks=lambda x: ((x, 0.0, False),),
    ),
    Rule(
        "norminf",
        F.norminf,
        "norm(x, inf)",
        "max norm: largest absolute value",
        public=True,
        # selected where PyTorch multiplies (an inf upstream gives it nan elsewhere)
        grad=lambda x, out: (
            F.select(_ties(sp.Abs(x), out), sp.sign(x) / F.sum_(_ties(sp.Abs(x), out))),
        ),
        shown=lambda x, out: (sp.sign(x) * _evenly(sp.Abs(x), out),),
        # JAX (measured): max(0, max(abs(x))): abs'(0) = 1, and where every element is
        # 0 the outer max's tie halves it (0.25 each for two zeros)
        jax=lambda x, out: (
            (F.ge(x, 0) - F.lt(x, 0))
            * _evenly(sp.Abs(x), out)
            * (1 - F.eq(out, 0) / 2),
        ),
        kink="ties share the gradient evenly, as PyTorch; 0 where x is all 0 "
        "(JAX: 1/(2n) each)",
        numpy="np.max(np.abs({0}))",
        latex=r"\left\lVert {0} \right\rVert_{{\infty}}",
        torch=lambda t, x: t.linalg.vector_norm(x, float("inf")),
        reduction=True,
        kinks_at=((0.0,),),
        mpmath=lambda mp, x: abs(x),  # of a scalar
        kinks=lambda x: ((x, 0.0, False),),
    ),
    Rule(
        "logsumexp",
        F.logsumexp,
        "logsumexp(x)",
        "log(sum(exp(x))), without overflow",
        names=("logsumexp",),
        grad=lambda x, out: (sp.exp(x - out),),
        numpy="_logsumexp({0})",
        latex=r"\operatorname{{logsumexp}}\left({0}\right)",
        torch=lambda t, x: t.logsumexp(x.reshape(-1), 0),
        reduction=True,
        mpmath=lambda mp, x: x,  # of a scalar
    ),
    # --- 1-D basic indexing (syntax, not functions: x[1:], x[:-1], x[::2], x[-1])
    Rule(
        "slice",
        F.slice_,
        "x[start:stop:step]",
        "a 1-D slice with number bounds (negative counts from the end)",
        public=False,
        arity=(4, 4),
        grad=lambda x, a, b, c, out: (
            F.unslice(UPSTREAM, x, a, b, c),
            sp.S.Zero,
            sp.S.Zero,
            sp.S.Zero,
        ),
        kink="linear: the gradient is the upstream scattered back into x's shape "
        "(zeros elsewhere), as PyTorch's slice backward",
        numpy="{0}[{1}:{2}:{3}]",
        torch=lambda t, x, a, b, c: x[_int(a) : _int(b) : _int(c)],
        sympy=lambda x, a, b, c: F.slice_(x, a, b, c),
        no_mpmath="an array operation: a scalar has no slices",
        used_by=("parse",),
    ),
    Rule(
        "index",
        F.index,
        "x[i]",
        "one element of a 1-D array (negative counts from the end)",
        public=False,
        arity=(2, 2),
        grad=lambda x, i, out: (F.unindex(UPSTREAM, x, i), sp.S.Zero),
        kink="linear: the gradient is the upstream at element i, zeros elsewhere",
        numpy="{0}[{1}]",
        torch=lambda t, x, i: x[_int(i)],
        no_mpmath="an array operation: a scalar has no elements to pick",
        used_by=("parse",),
    ),
    Rule(
        "unslice",
        F.unslice,
        "unslice(g, x, start, stop, step)",
        "a slice's gradient: g at x[start:stop:step], zeros elsewhere",
        arity=(5, 5),
        grad=lambda g, x, a, b, c, out: (
            F.slice_(UPSTREAM, a, b, c),
            sp.S.Zero,
            sp.S.Zero,
            sp.S.Zero,
            sp.S.Zero,
        ),
        kink="linear in g",
        numpy="_unslice({0}, {1}, {2}, {3}, {4})",
        torch=lambda t, g, x, a, b, c: (
            t.zeros_like(x).index_put_(
                (t.arange(x.shape[0])[_int(a) : _int(b) : _int(c)],), g
            )
            if x.dim()
            else g
        ),
        no_mpmath="an array operation",
        used_by=("slice",),
    ),
    Rule(
        "unindex",
        F.unindex,
        "unindex(g, x, i)",
        "an element's gradient: g at x[i], zeros elsewhere",
        arity=(3, 3),
        grad=lambda g, x, i, out: (F.index(UPSTREAM, i), sp.S.Zero, sp.S.Zero),
        kink="linear in g",
        numpy="_unindex({0}, {1}, {2})",
        torch=lambda t, g, x, i: t.zeros_like(x).index_put_(
            (t.tensor([_int(i)]),), g.reshape(1)
        ),
        no_mpmath="an array operation",
        used_by=("index",),
    ),
    Rule(
        "expand",
        F.expand,
        "expand(t, like)",
        "t broadcast to like's shape (a tangent smaller than its array, before a "
        "slice picks from it)",
        arity=(2, 2),
        grad=lambda t, like, out: (sp.S.One, sp.S.Zero),
        kink="linear in t",
        numpy="_expand_like({0}, {1})",
        torch=lambda t, v, like: v.expand(like.shape),
        no_mpmath="an array operation",
        used_by=("forward",),
    ),
    # --- helpers that rules are written with (not part of the language)
    Rule(
        "size",
        F.size,
        "size(x)",
        "number of elements",
        public=False,
        names=("size",),
        grad=_zero,
        kink="piecewise constant: derivative 0",
        # a NumPy scalar of x's dtype: never a Python int (1 / 0 would raise)
        numpy="_size({0})",
        latex=r"\left|{0}\right|",
        torch=lambda t, x: t.tensor(float(x.numel())),
        reduction=True,
        mpmath=lambda mp, x: mp.mpf(1),  # of a scalar
        used_by=("mean",),
    ),
    Rule(
        "prod_grad",
        F.prod_grad,
        "prod_grad(x, p)",
        "d prod(x) / dx, exact with zeros",
        arity=(2, 2),
        grad=lambda x, p, out: (-p / x**2, 1 / x),
        kink="used only inside prod's rule; its own derivative ignores zeros",
        numpy="_prod_grad({0}, {1})",
        latex=r"\frac{{{1}}}{{{0}}}",
        torch=lambda t, x, p: p / x,
        mpmath=lambda mp, x, p: p / x,
        used_by=("prod",),
        # p is prod(x) itself: the tangent along dx of d prod / dx, exact with zeros
        tangent=lambda x, p, out, dx, dp: F.prod_grad_tangent(x, dx),
    ),
    Rule(
        "prod_grad_tangent",
        F.prod_grad_tangent,
        "prod_grad_tangent(x, dx)",
        "the tangent of d prod(x) / dx along dx (prod's Hessian times dx)",
        arity=(2, 2),
        grad=lambda x, dx, out: (sp.nan, sp.nan),
        kink="exact with zeros (the products of all elements but two); forward "
        "mode's own rule for prod_grad: never differentiated again (symgrad stops "
        "at second order)",
        numpy="_prod_grad_tangent({0}, {1})",
        latex=r"\dot{{\nabla}} \prod {0}",
        torch=lambda t, x, dx: t.func.jvp(
            t.func.grad(lambda u: u.prod()), (x,), (dx.expand(x.shape),)
        )[1],
        mpmath=lambda mp, x, dx: mp.mpf(0),  # of a scalar: prod's Hessian is 0
        used_by=("prod_grad",),
    ),
    Rule(
        "safe_recip",
        F.safe_recip,
        "safe_recip(x)",
        "1 / x, and 0 where x == 0",
        grad=lambda x, out: (-(out**2),),
        numpy="_safe_recip({0})",
        latex=r"\frac{{1}}{{{0}}}",
        torch=lambda t, x: t.where(x == 0, 0.0, 1 / x),
        mpmath=lambda mp, x: 1 / x if x != 0 else mp.mpf(0),
        used_by=("atan2",),
    ),
    Rule(
        "select",
        F.select,
        "select(mask, v)",
        "v where mask holds, exactly 0 elsewhere (even where v is inf or nan)",
        arity=(2, 2),
        # selects in turn (the tangent of a select is selected by the same mask)
        grad=lambda mask, v, out: (sp.S.Zero, F.where(mask, 1, 0)),
        kink="the mask is piecewise constant: no gradient flows into it",
        numpy="np.where({0}, {1}, 0)",
        mask_args=(0,),
        latex=r"\left[{0}\right] {1}",
        torch=lambda t, m, v: t.where(m != 0, v, t.zeros_like(v)),
        domain=((-1, 1), (-3, 3)),
        mpmath=lambda mp, m, v: v if m != 0 else mp.mpf(0),
        used_by=("reverse",),
    ),
    Rule(
        "dtype",
        None,
        "dtype(x, y, ...)",
        "the floating dtype of the inputs, which masks used as numbers are cast to",
        arity=(0, None),
        grad=_zero,
        kink="a dtype, not a number: no gradient",
        numpy=lambda *codes: f"_input_dtype({', '.join(codes)})",
        torch=lambda t, *xs: None,
        sympy=lambda *args: sp.S.One,
        no_mpmath="a dtype, not a value: nothing to compute at high precision",
        used_by=("graph",),
    ),
    Rule(
        "float",
        None,
        "float(mask)",
        "a mask used as a number: exact 0/1 in the inputs' floating dtype",
        arity=(2, 2),
        grad=_zero,
        kink="the mask is piecewise constant: no gradient flows into it",
        numpy="_cast({0}, {1})",
        torch=lambda t, m, like: m.to(like.dtype),
        mask_args=(0,),
        sympy=lambda m, dtype: m,
        mpmath=lambda mp, m, dtype: mp.mpf(int(m)),
        used_by=("graph",),
    ),
    Rule(
        "any_like",
        None,
        "any_like(mask, target)",
        "a mask reduced to target's shape by `or` over the axes broadcasting added",
        arity=(2, 2),
        grad=_zero,
        kink="a mask: piecewise constant",
        numpy="_any_like({0}, {1})",
        torch=lambda t, m, target: m.reshape(-1).any() if target.dim() == 0 else m,
        mask=True,
        mask_args=(0,),
        used_by=("reverse",),
        mpmath=lambda mp, m, target: m,
    ),
    Rule(
        "unbroadcast",
        F.unbroadcast,
        "unbroadcast(g, target, consumer)",
        "a gradient that flowed through broadcasting, summed back to target's shape",
        arity=(3, 3),
        grad=lambda g, target, consumer, out: (sp.S.One, sp.S.Zero, sp.S.Zero),
        numpy="_sum_like({0}, {1}, {2})",
        torch=lambda t, g, target, consumer: g.sum_to_size(target.shape),
        mpmath=lambda mp, g, target, consumer: g,  # scalars
        used_by=("reverse",),
    ),
)


BY_CLASS: dict[type, Rule] = {rule.cls: rule for rule in RULES if rule.cls is not None}
BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
# The rows spelled as Python operators, by spelling and number of operands.
BY_OPERATOR: dict[tuple[str, int], Rule] = {
    (rule.operator, rule.arity[0]): rule for rule in RULES if rule.operator is not None
}
# The comparisons (their Python spelling, e.g. "<=", to the row).
COMPARISONS: dict[str, Rule] = {
    rule.operator: rule
    for rule in RULES
    if rule.mask
    and rule.operator is not None
    and rule.arity == (2, 2)
    and not rule.mask_args
}

CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E, "inf": sp.oo}


_BY_SPELLING: dict[str, list[Rule]] = {}
for _rule in RULES:
    for _name in _rule.names:
        _BY_SPELLING.setdefault(_name, []).append(_rule)


def rules_named(name: str) -> list[Rule]:
    """The rows that the language name `name` may build (one per arity)."""
    return list(_BY_SPELLING.get(name, ()))


def function_names() -> list[str]:
    """Every function name of the language, sorted."""
    names = {n for rule in RULES for n in rule.names}
    return sorted(names)


def rule_for(expr: sp.Expr) -> Rule:
    """The registry row of a SymPy node; a clear error where the registry has none."""
    try:
        return BY_CLASS[expr.func]
    except KeyError:
        raise NotImplementedError(
            f"symgrad has no rule for SymPy's {expr.func.__name__} (in {expr}); add a "
            "row to symgrad/registry.py"
        ) from None
