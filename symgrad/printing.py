"""Printing: SymPy expressions as symgrad's own language, as SymPy text, and as LaTeX.

- `to_text`: what a user reads and can type back (`max(x)`, `(x < y)`, `lgamma(x)`);
  parsing it gives the same SymPy expression again.
- `to_sympy_text`: text that `sympy.sympify` parses: comparisons as Piecewise, and
  symgrad's own functions as undefined SymPy functions with names that cannot be taken
  for Python builtins (`amax`, `asum`, ...).
- `to_latex`: SymPy's LaTeX, with the registry's LaTeX for symgrad's own functions and
  input names as `latex_name` writes them (no two names look alike).

Floats print as their shortest round-trip repr (`1.5`, not `1.50000000000000`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from symgrad import functions as F
from symgrad import registry

_OPERATORS = {
    F.lt: "<",
    F.le: "<=",
    F.gt: ">",
    F.ge: ">=",
    F.eq: "==",
    F.ne: "!=",
}
# Language names of SymPy's own classes where SymPy's name differs.
_SYMPY_NAMES = {
    sp.Abs: "abs",
    sp.ceiling: "ceil",
    sp.loggamma: "lgamma",
}


def _float_text(value: sp.Float) -> str:
    number = float(value)
    text = repr(number)
    return text if number == number and abs(number) != float("inf") else str(value)


class TextPrinter(StrPrinter):
    """symgrad's own language."""

    def _print_Float(self, expr: sp.Float) -> str:
        return _float_text(expr)

    def _print_Infinity(self, expr: sp.Expr) -> str:
        return "inf"

    def _print_NegativeInfinity(self, expr: sp.Expr) -> str:
        return "-inf"

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return "e"

    def _print_Pow(self, expr: sp.Expr, rational: bool = False) -> str:
        # a negative power as a reader writes it: 1/(x + 1)**2, not (x + 1)**(-2)
        # (SymPy does so itself for the powers -1 and -1/2)
        exp = expr.exp
        if (
            expr.is_commutative
            and exp.is_Rational
            and exp.is_negative
            and exp not in (-1, sp.Rational(-1, 2))
            and not expr.base.is_Number
        ):
            return "1/" + self._print(sp.Pow(expr.base, -exp, evaluate=False))
        return super()._print_Pow(expr, rational)

    # SymPy's values outside the real numbers, spelled so that parsing gives them back
    # (SymPy's `nan`, `zoo`, `I` would parse as inputs of those names).
    def _print_NaN(self, expr: sp.Expr) -> str:
        names = [name for name, value in registry.CONSTANTS.items() if value is sp.nan]
        return names[0] if names else "(inf - inf)"

    def _print_ComplexInfinity(self, expr: sp.Expr) -> str:
        return "(1/0)"

    def _print_ImaginaryUnit(self, expr: sp.Expr) -> str:
        return "sqrt(-1)"

    def _print_EulerGamma(self, expr: sp.Expr) -> str:
        return "(-digamma(1))"  # exact digamma values hold it

    def _as_ordered_terms(self, expr: sp.Expr, order: str | None = None) -> list:
        # Sorting evaluates constant terms numerically, which mpmath cannot always do
        # (erfc(1e300) overflows): print those sums in SymPy's stored order.
        try:
            return super()._as_ordered_terms(expr, order=order)
        except (ArithmeticError, TypeError, ValueError):
            return list(expr.args)

    def _print_Mul(self, expr: sp.Expr) -> str:
        if any(a is sp.nan for a in expr.args):  # kept as written (nan/nan): SymPy's
            # printer would compare the nan coefficient with 0 and raise
            return "*".join(self.parenthesize(a, PRECEDENCE["Mul"]) for a in expr.args)
        return super()._print_Mul(expr)

    def _print_Function(self, expr: sp.Expr) -> str:
        func = expr.func
        if func in _OPERATORS:
            left, right = (self._print(a) for a in expr.args)
            return f"({left} {_OPERATORS[func]} {right})"
        if func is F.logical_and or func is F.logical_or:
            word = "and" if func is F.logical_and else "or"
            left, right = (self._print(a) for a in expr.args)
            return f"({left} {word} {right})"
        if func is F.logical_not:
            return f"(not {self._print(expr.args[0])})"
        if func is sp.polygamma:
            order, arg = expr.args
            if order == 0:
                return f"digamma({self._print(arg)})"
            if order == 1:
                return f"trigamma({self._print(arg)})"
            return f"polygamma({self._print(order)}, {self._print(arg)})"
        name = self.function_name(expr)
        return f"{name}({', '.join(self.argument(a) for a in expr.args)})"

    def argument(self, arg: sp.Expr) -> str:
        """A function argument: a comparison needs no parentheses of its own there."""
        text = self._print(arg)
        if isinstance(arg, sp.Basic) and arg.func in F.MASKS and text.startswith("("):
            return text[1:-1]
        return text

    def function_name(self, expr: sp.Expr) -> str:
        func = expr.func
        if func in _SYMPY_NAMES:
            return _SYMPY_NAMES[func]
        rule = registry.BY_CLASS.get(func)
        if rule is not None and rule.names:
            return rule.names[0]
        if rule is not None and rule.signature.startswith("norm("):
            return "norm"
        return func.__name__

    def _print_norm1(self, expr: sp.Expr) -> str:
        return f"norm({self.argument(expr.args[0])}, 1)"

    # 1-D indexing as written (x[1:], x[-1]); a gradient scattered back into its
    # array's shape as `unslice(g, x[1:])`: g at those elements, zeros elsewhere
    def _bounds(self, args: Sequence[sp.Expr]) -> str:
        start, stop, step = (
            "" if a == registry.NO_BOUND else self._print(a) for a in args
        )
        return f"{start}:{stop}" + (f":{step}" if step else "")

    def _subscripted(self, array: sp.Expr) -> str:
        text = self._print(array)
        return (
            text if array.is_Symbol or isinstance(array, sp.Function) else f"({text})"
        )

    def _print_slice_(self, expr: sp.Expr) -> str:
        return f"{self._subscripted(expr.args[0])}[{self._bounds(expr.args[1:])}]"

    def _print_index(self, expr: sp.Expr) -> str:
        return f"{self._subscripted(expr.args[0])}[{self._print(expr.args[1])}]"

    def _print_unslice(self, expr: sp.Expr) -> str:
        g, x = (self._print(a) for a in expr.args[:2])
        return f"unslice({g}, {x}[{self._bounds(expr.args[2:])}])"

    def _print_unindex(self, expr: sp.Expr) -> str:
        g, x, i = (self._print(a) for a in expr.args)
        return f"unslice({g}, {x}[{i}])"

    def _print_norminf(self, expr: sp.Expr) -> str:
        return f"norm({self.argument(expr.args[0])}, inf)"

    _print_Abs = _print_Function  # type: ignore[assignment]
    _print_sign = _print_Function  # type: ignore[assignment]
    _print_ceiling = _print_Function  # type: ignore[assignment]
    _print_floor = _print_Function  # type: ignore[assignment]


# SymPy-parsable names for symgrad's functions that would clash with Python builtins
# or with SymPy functions of another meaning.
_SYMPIFY_NAMES = {
    F.sum_: "asum",
    F.amax: "amax",
    F.amin: "amin",
    F.prod: "aprod",
    F.round_: "round_half_even",
    F.maximum: "Max",
    F.minimum: "Min",
    F.norm1: "norm1",
    F.norminf: "norminf",
    sp.loggamma: "loggamma",
    sp.ceiling: "ceiling",
    sp.Abs: "Abs",
}


# symgrad's functions whose SymPy namesakes differ (SymPy's sinc is sin(x)/x; its cbrt
# and root are complex for a negative x), as SymPy forms of the same function.
_SYMPIFY_FORMS = {
    F.sinc: "sinc(pi*({0}))",
    F.cbrt: "real_root({0}, 3)",
    F.root: "real_root({0}, {1})",
}


class SympyTextPrinter(TextPrinter):
    """Text for `sympy.sympify`: comparisons become Piecewise, names avoid builtins."""

    def _print_Function(self, expr: sp.Expr) -> str:
        func = expr.func
        args = [self._print(a) for a in expr.args]
        if func in _OPERATORS:
            return f"Piecewise((1, {args[0]} {_OPERATORS[func]} {args[1]}), (0, True))"
        if func is F.logical_and or func is F.logical_or:
            op = "&" if func is F.logical_and else "|"
            return f"Piecewise((1, Ne({args[0]}, 0) {op} Ne({args[1]}, 0)), (0, True))"
        if func is F.logical_not:
            return f"Piecewise((1, Eq({args[0]}, 0)), (0, True))"
        if func is F.where:
            return f"Piecewise(({args[1]}, Ne({args[0]}, 0)), ({args[2]}, True))"
        if func is sp.polygamma:
            return f"polygamma({args[0]}, {args[1]})"
        if func in _SYMPIFY_FORMS:  # SymPy's sinc, cbrt and root mean other things
            return _SYMPIFY_FORMS[func].format(*args)
        name = _SYMPIFY_NAMES.get(func) or self.function_name(expr)
        return f"{name}({', '.join(args)})"

    _print_norm1 = _print_Function  # type: ignore[assignment]
    _print_norminf = _print_Function  # type: ignore[assignment]

    def _print_Infinity(self, expr: sp.Expr) -> str:
        return "oo"

    def _print_NegativeInfinity(self, expr: sp.Expr) -> str:
        return "-oo"

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return "E"

    def _print_NaN(self, expr: sp.Expr) -> str:
        return "nan"

    def _print_ComplexInfinity(self, expr: sp.Expr) -> str:
        return "zoo"

    def _print_ImaginaryUnit(self, expr: sp.Expr) -> str:
        return "I"

    def _print_EulerGamma(self, expr: sp.Expr) -> str:
        return "EulerGamma"


class SymgradLatexPrinter(LatexPrinter):
    """SymPy's LaTeX, with the registry's templates for symgrad's own functions."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._plain_mul_symbol = self._settings["mul_symbol_latex"]

    def _print_Float(self, expr: sp.Float) -> str:
        text = _float_text(expr)
        if "e" in text and "inf" not in text:
            mantissa, exponent = text.split("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
        return text

    def _print_Function(self, expr: sp.Expr, exp: str | None = None) -> str:
        rule = registry.BY_CLASS.get(expr.func)
        if (
            rule is not None
            and rule.latex is not None
            and isinstance(expr, F.SymgradFunction)
        ):
            args = [self._print(a) for a in expr.args]
            text = rule.latex.format(*args)
            if exp is not None:
                text = rf"\left({text}\right)^{{{exp}}}"
            return text
        return super()._print_Function(expr, exp)

    def _latex_bounds(self, args: Sequence[sp.Expr]) -> str:
        start, stop, step = (
            "" if a == registry.NO_BOUND else self._print(a) for a in args
        )
        return f"{start}:{stop}" + (f":{step}" if step else "")

    def _print_slice_(self, expr: sp.Expr, exp: str | None = None) -> str:
        array, bounds = self._print(expr.args[0]), self._latex_bounds(expr.args[1:])
        text = rf"\left({array}\right)_{{[{bounds}]}}"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_index(self, expr: sp.Expr, exp: str | None = None) -> str:
        array, i = (self._print(a) for a in expr.args)
        text = rf"\left({array}\right)_{{[{i}]}}"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_unslice(self, expr: sp.Expr, exp: str | None = None) -> str:
        g, x = (self._print(a) for a in expr.args[:2])
        bounds = self._latex_bounds(expr.args[2:])
        return rf"\operatorname{{unslice}}\left({g}, {x}_{{[{bounds}]}}\right)"

    def _print_unindex(self, expr: sp.Expr, exp: str | None = None) -> str:
        g, x, i = (self._print(a) for a in expr.args)
        return rf"\operatorname{{unslice}}\left({g}, {x}_{{[{i}]}}\right)"

    def _print_Mul(self, expr: sp.Expr) -> str:
        if any(a is sp.nan for a in expr.args):  # as in TextPrinter._print_Mul
            return r" \cdot ".join(
                rf"\frac{{1}}{{{self._print(a.base)}}}"
                if a.is_Pow and a.exp == -1
                else self.parenthesize(a, PRECEDENCE["Mul"])
                for a in expr.args
            )
        # An upright name beside another factor reads as one name or as a function
        # (hi*lo as "hilo", lo*(x + 1) as "lo(x + 1)"): such products take a \cdot.
        settings = self._settings
        before = settings["mul_symbol_latex"]
        if any(_is_upright(factor) for factor in expr.args):
            settings["mul_symbol_latex"] = r" \cdot "
        else:
            settings["mul_symbol_latex"] = self._plain_mul_symbol
        try:
            return super()._print_Mul(expr)
        finally:
            settings["mul_symbol_latex"] = before

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        # every name as latex_name writes it, not SymPy's reading of the name
        # (x__y as x^{y}, x_1_2 as x_{1 2}, xbar as \bar{x})
        chosen = self._settings["symbol_names"].get(expr)
        return chosen if chosen is not None else latex_name(expr.name)


def _is_upright(factor: sp.Basic) -> bool:
    base = factor.base if isinstance(factor, sp.Pow) else factor
    return isinstance(base, sp.Symbol) and latex_name(base.name).startswith(r"\mathrm")


# Above this many nodes, terms print in SymPy's stored (canonical) order instead of
# being sorted for reading: sorting dominates the time to print a 10,000-term sum.
SORT_LIMIT = 2000


def _order(expr: sp.Expr) -> str | None:
    if not isinstance(expr, sp.Basic):
        return None
    count = 0
    for _ in sp.preorder_traversal(expr):
        count += 1
        if count > SORT_LIMIT:
            return "none"
    return None


def to_text(expr: sp.Expr) -> str:
    """Print in symgrad's language."""
    printer = TextPrinter({"order": _order(expr)})
    return (
        printer.argument(expr) if isinstance(expr, sp.Basic) else printer.doprint(expr)
    )


def to_sympy_text(expr: sp.Expr) -> str:
    """Print as text that `sympy.sympify` parses."""
    return SympyTextPrinter({"order": _order(expr)}).doprint(expr)


def to_latex(expr: sp.Expr) -> str:
    """Print as LaTeX math (no surrounding dollars)."""
    return SymgradLatexPrinter({"mul_symbol": None}).doprint(expr)


# Greek names that print as their letter: each has its own LaTeX command, so no two
# names share a letter. Not: omicron and the capitals SymPy writes as Latin letters
# (Alpha as A would be the input A); lambda (a keyword; SymPy's spelling is lamda,
# and Lambda is taken by the capital).
_GREEK = {
    name: "\\" + name
    for name in (
        "alpha beta gamma delta epsilon zeta eta theta iota kappa mu nu xi pi rho "
        "sigma tau upsilon phi chi psi omega "
        "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
    ).split()
} | {"lamda": r"\lambda"}
_NUMBERED = re.compile(r"([A-Za-z]+)([0-9]+)")


@functools.lru_cache(maxsize=4096)
def latex_name(name: str) -> str:
    r"""An input's name in LaTeX, one rendering per name (no two names look alike).

    A letter in math italic (`x`), a Greek name as its letter (`alpha`: \alpha), either
    with a number as subscript (`x1`: x_{1}, `alpha2`: \alpha_{2}); every other name
    upright, letter for letter, underscores shown (`lo`: \mathrm{lo}, `x_1`:
    \mathrm{x\_1}, `x__y`: \mathrm{x\_\_y}). A constant's name (`pi`, `e`) is
    upright as an input, so that it is not the constant (\pi, e).
    """
    if name not in registry.CONSTANTS:
        if len(name) == 1 and name.isascii() and name.isalpha():
            return name
        if name in _GREEK:
            return _GREEK[name]
        numbered = _NUMBERED.fullmatch(name)
        if numbered:
            base, digits = numbered.groups()
            if len(base) == 1 or base in _GREEK:
                return f"{_GREEK.get(base, base)}_{{{digits}}}"
    return r"\mathrm{" + "".join(_upright_char(c) for c in name) + "}"


def _upright_char(char: str) -> str:
    if char == "_":
        return r"\_"
    if char.isascii() and char.isalnum():
        return char
    return rf"\text{{{char}}}"  # a name from --inputs may be any identifier


def latex_rows(
    inputs: Sequence[str], expression: sp.Expr, derivatives: Mapping[str, sp.Expr]
) -> list[tuple[str, str]]:
    """The function and each partial derivative as (left side, right side) LaTeX:
    whoever lays them out (lines, an ``aligned`` block) joins each pair at its own
    ``=``, never at an ``=`` inside the formula (``\\left[x = y\\right]``)."""
    args = ", ".join(latex_name(name) for name in inputs)
    rows = [(f"f({args})", to_latex(expression))]
    for name, d in derivatives.items():
        rows.append(
            (rf"\frac{{\partial f}}{{\partial {latex_name(name)}}}", to_latex(d))
        )
    return rows


def second_latex_rows(
    second: Mapping[str, Mapping[str, sp.Expr]],
) -> list[tuple[str, str]]:
    r"""Each second partial derivative as (left side, right side) LaTeX:
    \frac{\partial^2 f}{\partial x^2}, \frac{\partial^2 f}{\partial x \partial y}."""
    rows = []
    for a, by in second.items():
        for b, d in by.items():
            if a == b:
                left = rf"\frac{{\partial^2 f}}{{\partial {latex_name(a)}^{{2}}}}"
            else:
                bottom = rf"\partial {latex_name(a)} \partial {latex_name(b)}"
                left = rf"\frac{{\partial^2 f}}{{{bottom}}}"
            rows.append((left, to_latex(d)))
    return rows


def second_label(a: str, b: str) -> str:
    """`d2f/dx2`, `d2f/dxdy`: a second partial derivative's name in text."""
    return f"d2f/d{a}2" if a == b else f"d2f/d{a}d{b}"


__all__ = [
    "latex_name",
    "latex_rows",
    "second_label",
    "second_latex_rows",
    "to_latex",
    "to_sympy_text",
    "to_text",
]
