"""Hypothesis strategies: random expression strings over symgrad's whole language, and
random points (values, dtypes, broadcasting shapes, grad_output) to evaluate them at.

The functions come from the registry, never from a list kept here: every public row
(public as `symgrad.catalog.catalog_rows` decides) is generated. A row with names is
called by each of its names with each argument count its arity allows (n-ary max/min
with 2 to 4 arguments; counts whose builder wants literal numbers, such as norm's p, are
left to the rows spelled with them). A row without names is generated from its
`signature`, read by Python's parser as a template whose free names are holes: `a ** b`,
`a < b`, `not a`, `norm(x, inf)`, `digamma(x)`; an operator's row with names too
(`a ** b`, `pow(a, b)`) is generated both ways. The spellings of `registry.SPELLINGS`
(sqrt, trigamma, ...) are calls too. Around those, the strategy adds what the grammar
has beyond single functions: `-`, `/`, unary minus, `^` for power, comparison chains,
`and`/`or` chains, `where` on comparisons, masks used as numbers, repeated
subexpressions (`e/e`, `e - e`, `e*e`, `0*e + f`), literals and the constants.

An argument of a function whose registry `domain` leaves out part of the negative axis
(log, sqrt, acosh, erfinv, ...) is squashed into that domain one time in three
(`lo + (hi - lo)*sigmoid(arg)`), so that not every example is nan; the other times it is
not, to reach nan, inf and the kinks. Choices shrink towards the simple side: a leaf, no
squashing, no huge constant, ones for grad_output, value 0.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from symgrad import registry
from symgrad.catalog import catalog_rows

VARIABLES = ("x", "y", "z")
LITERALS = ("0", "0.5", "-1", "3", "2", "1.5")
# Constants from literals that overflow or are undefined in floating point.
SPECIAL_CONSTANTS = ("1/0", "0/0", "-1/0")
# At most one of these per expression: exact big integers (the current parser rejects
# a product of several above 4096 bits).
HUGE = ("10**400", "10**1000")
DEFAULT_DOMAIN = (-3.0, 3.0)
MAX_NARY = 4

PUBLIC = frozenset(row["name"] for row in catalog_rows(public_only=True))


@dataclass(frozen=True)
class Expr:
    """A generated expression: its text, and what the generator needs to know of it."""

    text: str
    atomic: bool = False  # a name, a number >= 0, a call or parenthesized
    const: bool = False  # uses no input
    literal: bool = False  # a plain number literal

    def wrapped(self) -> str:
        return self.text if self.atomic else f"({self.text})"


@dataclass(frozen=True)
class Form:
    """One way to build a node: a template over `holes` argument slots."""

    label: str
    holes: int
    render: Callable[[list[str]], str]
    domains: tuple[tuple[float, float] | None, ...] = ()
    atomic: bool = True
    is_pow: bool = False
    call: bool = False  # the holes are a call's arguments: no parentheses needed


def _call_form(name: str, count: int, domains: tuple, is_pow: bool = False) -> Form:
    return Form(
        f"{name}/{count}",
        count,
        lambda args, name=name: f"{name}({', '.join(args)})",
        domains,
        is_pow=is_pow,
        call=True,
    )


def _domains(rule: registry.Rule, count: int) -> tuple:
    """Per argument: the row's test domain where it is narrower than the default."""
    free = [
        d for i, d in enumerate(rule.domain * max(1, count)) if i not in rule.fixed_args
    ]
    out = []
    for i in range(count):
        d = free[min(i, len(free) - 1)] if free else None
        # squashed only where the row is defined on part of the negative axis
        out.append(None if d is None or d[0] <= DEFAULT_DOMAIN[0] else tuple(d))
    return tuple(out)


def _accepts_placeholders(build: Callable[..., sp.Expr], count: int) -> bool:
    try:
        build(*(sp.Dummy(real=True) for _ in range(count)))
    except (ValueError, TypeError):
        return False
    return True


def _template_form(rule: registry.Rule) -> Form:
    """A row spelled only by its signature: `a ** b`, `not a`, `norm(x, inf)`."""
    tree = ast.parse(rule.signature, mode="eval")
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    holes: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and id(node) not in calls
            and node.id not in registry.CONSTANTS
            and node.id not in holes
        ):
            holes.append(node.id)
    marks = {h: f"__HOLE{i}__" for i, h in enumerate(holes)}

    class Mark(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in marks and id(node) not in calls:
                return ast.Name(id=marks[node.id], ctx=ast.Load())
            return node

    text = ast.unparse(Mark().visit(tree))

    def render(args: list[str]) -> str:
        out = text
        for mark, arg in zip(marks.values(), args, strict=True):
            out = out.replace(mark, arg)
        return out

    atomic = isinstance(tree.body, ast.Call)
    return Form(
        rule.name,
        len(holes),
        render,
        _domains(rule, len(holes)),
        atomic=atomic,
        is_pow=rule.cls is sp.Pow,
        call=atomic,
    )


def _registry_forms() -> list[Form]:
    forms: list[Form] = []
    for rule in registry.RULES:
        if rule.name not in PUBLIC:
            continue
        if not rule.names or rule.operator is not None:  # `a ** b` and `pow(a, b)`
            forms.append(_template_form(rule))
        if not rule.names:
            continue
        low, high = rule.arity
        top = low + MAX_NARY - 2 if high is None else high
        for count in range(low, top + 1):
            if count > low and rule.build is not None:
                if not _accepts_placeholders(rule.build, count):
                    continue  # e.g. norm(x, p): p must be a literal (norm1/norminf)
            for name in rule.names:
                forms.append(
                    _call_form(name, count, _domains(rule, count), rule.cls is sp.Pow)
                )
    return forms


FORMS = _registry_forms()
SQUASH = registry.BY_NAME["sigmoid"].names[0]

# The grammar around the functions: operators that have no row of their own.
SYNTAX = (
    Form("sub", 2, lambda a: f"{a[0]} - {a[1]}", atomic=False),
    Form("div", 2, lambda a: f"{a[0]} / {a[1]}", atomic=False),
    Form("neg", 1, lambda a: f"-{a[0]}", atomic=False),
    Form("pos", 1, lambda a: f"+{a[0]}", atomic=False),
    Form("caret", 2, lambda a: f"{a[0]} ^ {a[1]}", atomic=False, is_pow=True),
    Form("chain", 3, lambda a: f"{a[0]} < {a[1]} <= {a[2]}", atomic=False),
    Form("chain2", 3, lambda a: f"{a[0]} > {a[1]} != {a[2]}", atomic=False),
    Form("andor", 3, lambda a: f"{a[0]} and {a[1]} or {a[2]}", atomic=False),
    Form(
        "mask_times",
        3,
        lambda a: f"({a[0]} < {a[1]})*({a[1]} - {a[2]})",
        atomic=False,  # a product: not an operand of ** as it is
    ),
    Form("where_cmp", 4, lambda a: f"where({a[0]} < {a[1]}, {a[2]}, {a[3]})"),
    Form(
        "where_masks",
        2,
        lambda a: f"1 - where({a[0]} < {a[1]}, {a[0]} > 0, {a[1]} > 0)",
        atomic=False,
    ),
    Form("where_guard", 1, lambda a: f"where({a[0]} > 0, sqrt({a[0]}), 0)"),
    Form("where_recip", 1, lambda a: f"where({a[0]} != 0, 1/{a[0]}, 0)"),
)
REPEATS = (
    lambda e, f: f"{e} / {e}",
    lambda e, f: f"{e} - {e}",
    lambda e, f: f"{e} * {e}",
    lambda e, f: f"0*{e} + {f}",
    lambda e, f: f"{e} - {e} + 3",
    lambda e, f: f"sqrt({e})*sqrt({e})",
)


def _leaf(variables: tuple[str, ...]) -> st.SearchStrategy[Expr]:
    names = st.sampled_from(variables).map(lambda v: Expr(v, atomic=True))
    numbers = st.sampled_from(LITERALS).map(
        lambda v: Expr(v, atomic=not v.startswith("-"), const=True, literal=True)
    )
    constants = st.sampled_from(sorted(registry.CONSTANTS)).map(
        lambda v: Expr(v, atomic=True, const=True)
    )
    special = st.sampled_from(SPECIAL_CONSTANTS).map(lambda v: Expr(v, const=True))

    @st.composite
    def leaf(draw: st.DrawFn) -> Expr:
        roll = draw(st.integers(0, 99))
        if roll < 60:
            return draw(names)
        if roll < 88:
            return draw(numbers)
        return draw(constants if roll < 94 else special)

    return leaf()


def _squash(arg: Expr, domain: tuple[float, float]) -> str:
    low, high = domain
    return f"({low!r} + {high - low!r}*{SQUASH}({arg.text}))"


@st.composite
def _expr(
    draw: st.DrawFn, variables: tuple[str, ...], depth: int, top: bool = False
) -> Expr:
    # (choices shrink towards 0: a leaf, no squashing, no huge constant)
    if depth <= 0 or (not top and draw(st.integers(0, 9)) < 3):
        return draw(_leaf(variables))
    kind = draw(st.integers(0, 9))
    sub = _expr(variables, depth - 1)
    if kind == 4:  # a repeated subexpression
        e = draw(sub)
        f = draw(sub)
        text = draw(st.sampled_from(REPEATS))(e.wrapped(), f.wrapped())
        return Expr(text, const=e.const and f.const)
    # (the top is a registry function more often: masks at the top have no gradient)
    syntax = kind in ((6,) if top else (2, 6, 8))
    form = draw(st.sampled_from(SYNTAX if syntax else FORMS))
    args = [draw(sub) for _ in range(form.holes)]
    if form.is_pow and args[0].const and args[1].const:
        # no exact powers of powers (3**3**3**3 has too many digits for any parser)
        if not (args[0].literal and args[1].literal):
            args[1] = Expr(draw(st.sampled_from(variables)), atomic=True)
    texts = []
    for i, arg in enumerate(args):
        domain = form.domains[i] if i < len(form.domains) else None
        if domain is not None and not arg.const and draw(st.integers(0, 2)) == 2:
            texts.append(_squash(arg, domain))
        else:
            texts.append(arg.text if form.call else arg.wrapped())
    text = form.render(texts)
    if not _is_python(text):  # an operand the form did not parenthesize (`*not x`)
        text = form.render([f"({t})" for t in texts])
    return Expr(text, atomic=form.atomic, const=all(a.const for a in args))


def _is_python(text: str) -> bool:
    try:
        ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError:
        return False
    return True


def _uses(text: str, variables: tuple[str, ...]) -> bool:
    tree = ast.parse(text.replace("^", "**"), mode="eval")
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return any(
        isinstance(n, ast.Name) and n.id in variables and id(n) not in calls
        for n in ast.walk(tree)
    )


@st.composite
def expressions(
    draw: st.DrawFn, variables: tuple[str, ...] = VARIABLES, max_depth: int = 3
) -> str:
    """A random expression string of symgrad's language using some of `variables`."""
    e = draw(_expr(variables, max_depth, top=True))
    text = e.text
    if not _uses(text, variables):
        text = f"{e.wrapped()} * {draw(st.sampled_from(variables))}"
    if draw(st.integers(0, 29)) == 29:
        huge = draw(st.sampled_from(HUGE))
        wrap = draw(st.sampled_from(("{h}*({e})", "sin({h})*({e})", "tanh({h})*({e})")))
        text = wrap.format(h=huge, e=text)
    return text


# --- points -------------------------------------------------------------------------

# Shapes that broadcast together: each input gets one of a family's shapes.
SHAPE_FAMILIES = (
    ((),),
    ((3,),),
    ((), (3,)),
    ((2, 3), (3,)),
    ((2, 3), (3,), ()),
    ((1, 3), (2, 1)),
    ((1, 3), (2, 1), ()),
)
EMPTY_FAMILIES = (
    ((0,),),
    ((0,), ()),
    ((0,), (1,)),
    ((2, 0), (0,)),
)
DTYPES = (np.float64, np.float32)


def _special_values() -> tuple[float, ...]:
    """0, ±0.5, ±1, ±2, every kink the registry names, then overflow points and inf.

    The simple values come first: hypothesis draws (and shrinks towards) the front of
    the list more often.
    """
    values = [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0]
    for rule in registry.RULES:
        for point in rule.kinks_at:
            values.extend(float(v) for v in point)
    # exp overflows, 1/x overflows, inf itself
    values += [800.0, -800.0, 1e-300, 1e300, math.inf, -math.inf]
    return tuple(dict.fromkeys(values))


SPECIAL_VALUES = _special_values()


def elements() -> st.SearchStrategy[float]:
    """Half special values, half random ones."""
    return st.one_of(
        st.sampled_from(SPECIAL_VALUES),
        st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False),
    )


@st.composite
def arrays(draw: st.DrawFn, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    size = math.prod(shape)
    flat = [draw(elements()) for _ in range(size)]
    with np.errstate(over="ignore"):  # 1e300 in float32 is inf
        return np.array(flat, dtype=np.float64).astype(dtype).reshape(shape)


@st.composite
def points(
    draw: st.DrawFn, names: tuple[str, ...], dtypes: tuple[type, ...] = DTYPES
) -> dict[str, np.ndarray]:
    """Values for the inputs `names`: one dtype, shapes from one broadcasting family."""
    dtype = draw(st.sampled_from(dtypes))
    empty = draw(st.integers(0, 7)) == 7  # one in eight has a size-0 input
    family = draw(st.sampled_from(EMPTY_FAMILIES if empty else SHAPE_FAMILIES))
    return {n: draw(arrays(draw(st.sampled_from(family)), dtype)) for n in names}


@st.composite
def grad_outputs(
    draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray | None:
    """None (ones) or a random upstream gradient shaped like the value."""
    if draw(st.integers(0, 4)) == 0:
        return None
    size = math.prod(shape)
    values = st.one_of(
        st.sampled_from((0.0, 1.0, -1.0, 0.5)),
        st.floats(-2.0, 2.0, allow_nan=False),
    )
    flat = [draw(values) for _ in range(size)]
    return np.array(flat, dtype=np.float64).astype(dtype).reshape(shape)
