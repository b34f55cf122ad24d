"""`symgrad plot`: a function and its derivative on one figure, kinks marked.

One input is varied over a range (`--range -3,3`); an expression of several inputs
needs `--wrt NAME` and a value for each other input (`--at y=1`), which stays fixed.
Values come from the evaluator (`Derivation.function.value_and_grad`), so the picture
shows what the generated code computes. Where a function of the expression has a kink
(the registry rows' `kinks` conditions: abs and relu at 0, clip at its bounds, max/min
ties, the jumps of sign, floor, ceil, round and of comparisons), the
kink is found on the varied input's axis (to the float, by bisection), the curves are
broken there, and markers show the one-sided limits (hollow) and the value the
convention picks at the kink itself (filled): abs'(0) is 0 with `--convention torch`
and 1 with `--convention jax`; clip' at a bound is 1 and 1/2.

matplotlib is an optional dependency (`pip install matplotlib`, or the extra: `pip
install ".[plot]"` in a checkout, `pip install "symgrad[plot]"` from an index); the
figure is drawn on an Agg canvas with matplotlib's default style whatever the user's
matplotlibrc says, and saved without a timestamp, so the same input gives the same PNG
bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.derivation import Derivation
from symgrad.errors import SymgradError
from symgrad.printing import to_text

# works wherever symgrad came from (the extra is "symgrad[plot]" or ".[plot]")
INSTALL_HINT = "plotting needs matplotlib: pip install matplotlib"
POINTS = 801  # samples over the range (odd: the midpoint is a sample)
MAX_KINKS = 40  # more than this (floor(100*x)...) are not marked one by one
SIZE = (6.4, 4.0)  # inches
DPI = 100
DASHES = (0, (5, 2))
COLORS = {"value": "#1f77b4", "grad": "#d62728", "kink": "#ff7f0e", "axis": "#888888"}


class MissingMatplotlib(SymgradError):
    """matplotlib is not installed: `pip install matplotlib`."""


@dataclass(frozen=True)
class Kink:
    """A kink on the varied input's axis and the values around it."""

    x: float
    value: float  # f at x, as the generated code computes it
    grad: float  # df/dx at x: the value the convention picks
    left: tuple[float, float]  # (f, df/dx) just left of x
    right: tuple[float, float]  # (f, df/dx) just right of x
    sources: tuple[str, ...]  # the sub-expressions that kink there, e.g. "abs(x)"

    @property
    def jumps(self) -> bool:
        """Whether f itself is discontinuous here (floor, sign, comparisons)."""
        return not _close(self.left[0], self.right[0])


@dataclass
class PlotData:
    """What the figure shows: the sampled curves (NaN where broken) and the kinks."""

    expression: str
    name: str  # the varied input
    fixed: dict[str, float]
    convention: str
    scalar_reduction: bool  # a reduction (max(x), norm(x)) of a one-element input
    x: np.ndarray
    value: np.ndarray
    grad: np.ndarray
    kinks: list[Kink]


# --- for the command (`symgrad plot` is wired in symgrad/cli.py) and Sphinx -----------
def require_matplotlib() -> Any:
    """The matplotlib module, or MissingMatplotlib saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise MissingMatplotlib(INSTALL_HINT) from None
    return matplotlib


def parse_range(text: str) -> tuple[float, float]:
    """`-3,3` into (-3.0, 3.0): two finite numbers, the first the smaller."""
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise SymgradError(
            f"--range: expected LO,HI such as -3,3, got '{text}'"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise SymgradError(f"--range: need finite LO < HI, got '{text}'")
    return lo, hi


# --- the data -------------------------------------------------------------------------
def plot_data(
    derivation: Derivation,
    *,
    wrt: str | None = None,
    lo: float = -3.0,
    hi: float = 3.0,
    fixed: Mapping[str, float] | None = None,
    points: int = POINTS,
) -> PlotData:
    """Sample f and df/d(wrt) over [lo, hi] with the generated code; find the kinks."""
    fixed = dict(fixed or {})
    name = _varied_input(derivation, wrt, fixed)
    inputs = derivation.inputs
    fixed = {k: float(v) for k, v in fixed.items() if k != name}
    index = inputs.index(name) if inputs else -1

    def args_for(x: np.ndarray) -> list[Any]:
        return [x if n == name else np.float64(fixed[n]) for n in inputs]

    pointwise = _has_reduction(derivation.expression)
    module = derivation.function

    def value_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        if not inputs:  # a constant: f is flat, its derivative 0
            value = np.asarray(module.forward(), dtype=np.float64)
            return np.broadcast_to(value, x.shape).copy(), np.zeros_like(x)
        with np.errstate(all="ignore"):
            if pointwise:  # max(x), norm(x): reduce one element at a time
                pairs = [module.value_and_grad(*args_for(v)) for v in x]
                value = np.array([float(p[0]) for p in pairs])
                grad = np.array([float(p[1][index]) for p in pairs])
            else:
                v, grads = module.value_and_grad(*args_for(x))
                value = np.broadcast_to(np.asarray(v, dtype=np.float64), x.shape)
                grad = np.broadcast_to(np.asarray(grads[index], float), x.shape)
        return np.array(value, dtype=np.float64), np.array(grad, dtype=np.float64)

    grid = np.linspace(lo, hi, points)
    locations = (
        _kink_locations(derivation, name, args_for, grid, pointwise) if inputs else {}
    )
    kinks = []
    for x, sources in sorted(locations.items()):
        step = max((hi - lo) * 1e-9, 4 * float(np.spacing(abs(x))))
        xs = np.array([x - step, x, x + step])
        value, grad = value_and_grad(xs)
        kinks.append(
            Kink(
                x=x,
                value=float(value[1]),
                grad=float(grad[1]),
                left=(float(value[0]), float(grad[0])),
                right=(float(value[2]), float(grad[2])),
                sources=tuple(sources),
            )
        )
    xs, value, grad = _lines(grid, kinks, lo, hi, value_and_grad)
    return PlotData(
        expression=to_text(derivation.expression),
        name=name,
        fixed=fixed,
        convention=derivation.convention,
        scalar_reduction=pointwise,
        x=xs,
        value=value,
        grad=grad,
        kinks=kinks,
    )


def _varied_input(
    derivation: Derivation, wrt: str | None, fixed: Mapping[str, float]
) -> str:
    inputs = derivation.inputs
    if wrt is None:
        if len(inputs) > 1:
            raise SymgradError(
                f"the expression has inputs {', '.join(inputs)}: choose the one to "
                "vary with --wrt, and fix the others with --at "
                f"(e.g. --wrt {inputs[0]} --at {inputs[1]}=1)"
            )
        name = inputs[0] if inputs else "x"
    elif wrt not in inputs:
        raise SymgradError(
            f"--wrt names '{wrt}', which is not an input "
            f"(inputs: {', '.join(inputs) or 'none'})"
        )
    else:
        name = wrt
    missing = [n for n in inputs if n != name and n not in fixed]
    if missing:
        raise SymgradError(
            f"--at needs a value for {', '.join(missing)} (only {name} is varied)"
        )
    extra = [n for n in fixed if n not in inputs]
    if extra:
        raise SymgradError(
            f"--at gives {', '.join(extra)}, which the expression does not use "
            f"(inputs: {', '.join(inputs) or 'none'})"
        )
    return name


def _has_reduction(expr: sp.Expr) -> bool:
    return any(
        isinstance(node, sp.Basic) and node.func in F.REDUCTIONS
        for node in sp.preorder_traversal(expr)
    )


def _lines(
    grid: np.ndarray,
    kinks: Sequence[Kink],
    lo: float,
    hi: float,
    value_and_grad: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sampled curves, with the one-sided points of each kink and a break there."""
    xs = grid
    for kink in kinks:
        step = max((hi - lo) * 1e-9, 4 * float(np.spacing(abs(kink.x))))
        xs = xs[np.abs(xs - kink.x) > 2 * step]
        near = np.array([kink.x - step, kink.x + step])
        xs = np.concatenate([xs, near[(near >= lo) & (near <= hi)]])
    xs = np.unique(xs)
    value, grad = value_and_grad(xs)
    # A NaN at each kink breaks the curve there (matplotlib leaves a gap); f is only
    # broken where it jumps.
    at = np.array([k.x for k in kinks], dtype=np.float64)
    order = np.searchsorted(xs, at)
    breaks_value = np.array([np.nan if k.jumps else k.value for k in kinks])
    breaks_grad = np.array(
        [k.grad if _close(k.left[1], k.right[1]) else np.nan for k in kinks]
    )
    return (
        np.insert(xs, order, at),
        np.insert(value, order, breaks_value),
        np.insert(grad, order, breaks_grad),
    )


def _close(a: float, b: float) -> bool:
    if np.isnan(a) and np.isnan(b):
        return True
    return bool(abs(a - b) <= 1e-6 * (1.0 + abs(a) + abs(b)))


# --- kinks ----------------------------------------------------------------------------
# A kink condition: where `arg == level`, or, for a periodic one, where `arg` is in
# `level + Z` (the jumps of floor and ceil at integers, of round at half-integers).
@dataclass(frozen=True)
class _Condition:
    arg: sp.Expr
    level: float
    periodic: bool
    source: str


def _conditions(expr: sp.Expr) -> list[_Condition]:
    """Where the non-smooth functions of `expr` have their kinks, as conditions."""
    found: list[_Condition] = []
    for node in sp.preorder_traversal(expr):
        if not isinstance(node, sp.Basic) or not node.args:
            continue
        func, args = node.func, node.args

        def add(
            arg: sp.Expr, level: float = 0.0, periodic: bool = False, node=node
        ) -> None:
            found.append(_Condition(sp.sympify(arg), level, periodic, to_text(node)))

        rule = registry.BY_CLASS.get(func)
        if rule is None or rule.kinks is None:
            continue
        for arg, level, periodic in rule.kinks(*args):
            # a mask argument (where's condition, and's operands) has its own kinks
            inner = registry.BY_CLASS.get(getattr(arg, "func", None))
            if inner is not None and inner.mask:
                continue
            add(arg, level, periodic)
    return found


def _kink_locations(
    derivation: Derivation,
    name: str,
    args_for: Callable[[np.ndarray], list[Any]],
    grid: np.ndarray,
    pointwise: bool,
) -> dict[float, list[str]]:
    """Each kink's x (the float where the condition holds, or the nearest), sources."""
    locations: dict[float, list[str]] = {}
    for cond in _conditions(derivation.expression):
        if name not in {s.name for s in cond.arg.free_symbols}:
            continue
        forward = _forward(cond.arg, derivation, args_for, pointwise)
        g = forward(grid)
        finite = g[np.isfinite(g)]
        if not finite.size:
            continue
        if cond.periodic:
            first = np.ceil(finite.min() - cond.level)
            last = np.floor(finite.max() - cond.level)
            if last - first > MAX_KINKS:
                continue
            levels = [cond.level + n for n in np.arange(first, last + 1)]
        else:
            levels = [cond.level]
        for level in levels:
            for x in _roots(lambda v, c=level, f=forward: f(v) - c, grid, g - level):
                sources = locations.setdefault(x, [])
                if cond.source not in sources:
                    sources.append(cond.source)
        if len(locations) > MAX_KINKS:
            return {}
    return locations


def _forward(
    arg: sp.Expr,
    derivation: Derivation,
    args_for: Callable[[np.ndarray], list[Any]],
    pointwise: bool,
) -> Callable[[np.ndarray], np.ndarray]:
    """`arg` as a function of the varied input, through its own generated module."""
    sub = Derivation(
        text=to_text(arg),
        expression=arg,
        inputs=derivation.inputs,
        wrt=derivation.inputs,
        convention=derivation.convention,
    )
    module = sub.function

    def forward(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            if pointwise:
                out = np.array([float(module.forward(*args_for(v))) for v in x.flat])
                return out.reshape(x.shape)
            return np.broadcast_to(
                np.asarray(module.forward(*args_for(x)), dtype=np.float64), x.shape
            ).copy()

    return forward


def _roots(
    h: Callable[[np.ndarray], np.ndarray], grid: np.ndarray, sampled: np.ndarray
) -> list[float]:
    """Where h changes sign (or is 0) between samples, bisected to adjacent floats."""
    sign = np.sign(sampled)
    roots = []
    for i in range(len(grid)):
        if sign[i] == 0 and (
            (i > 0 and sign[i - 1] != 0) or (i + 1 < len(grid) and sign[i + 1] != 0)
        ):
            roots.append(float(grid[i]))
        elif i + 1 < len(grid) and sign[i] * sign[i + 1] < 0:
            roots.append(_bisect(h, float(grid[i]), float(grid[i + 1])))
    return roots


def _bisect(h: Callable[[np.ndarray], np.ndarray], a: float, b: float) -> float:
    """Bisect over the floats themselves (at most 64 steps) to a sign change of h."""

    def at(x: float) -> float:
        return float(h(np.array([x]))[0])

    ha = at(a)
    ka, kb = _key(a), _key(b)
    while kb - ka > 1:
        km = (ka + kb) // 2
        hm = at(_float(km))
        if hm == 0:
            return _float(km)
        if np.sign(hm) == np.sign(ha):
            ka, ha = km, hm
        else:
            kb = km
    a, b = _float(ka), _float(kb)
    return a if abs(ha) <= abs(at(b)) else b


def _key(x: float) -> int:
    """Floats to integers in the same order (so bisection ends on adjacent floats)."""
    (bits,) = struct.unpack("<q", struct.pack("<d", x + 0.0))
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def _float(key: int) -> float:
    bits = key if key >= 0 else (-key) | -0x8000_0000_0000_0000
    (x,) = struct.unpack("<d", struct.pack("<q", bits))
    return float(x) + 0.0


# --- the figure -----------------------------------------------------------------------
def render(data: PlotData, path: str | Path) -> list[tuple[float, float]]:
    """Draw `data` into a PNG at `path`; returns each kink marker's pixel (x, y).

    The pixel positions are those of the filled markers (the derivative the convention
    picks at each kink) in the saved image, origin at the top left.
    """
    matplotlib = require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    path = Path(path)
    if not path.parent.is_dir():
        raise SymgradError(f"-o: the folder {path.parent} does not exist")
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # the same picture whatever the user's matplotlibrc
        fig = Figure(figsize=SIZE, dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        x = data.name
        ax.axhline(0.0, color=COLORS["axis"], linewidth=0.6, zorder=1)
        for kink in data.kinks:
            ax.axvline(
                kink.x, color=COLORS["axis"], linewidth=0.8, linestyle=":", zorder=1
            )
        ax.plot(
            data.x,
            data.value,
            color=COLORS["value"],
            linewidth=2,
            solid_capstyle="round",
            zorder=2,
        )
        ax.plot(
            data.x,
            data.grad,
            color=COLORS["grad"],
            linewidth=2,
            linestyle=DASHES,  # f and df/dx both show where they coincide (exp)
            dash_capstyle="round",
            zorder=2,
        )
        hollow = {"marker": "o", "markersize": 7, "markerfacecolor": "white"}
        for kink in data.kinks:
            if not _close(kink.left[1], kink.right[1]):
                for _, g in (kink.left, kink.right):
                    ax.plot([kink.x], [g], color=COLORS["grad"], zorder=3, **hollow)
            if kink.jumps:
                for v, _ in (kink.left, kink.right):
                    ax.plot([kink.x], [v], color=COLORS["value"], zorder=3, **hollow)
                ax.plot([kink.x], [kink.value], "o", color=COLORS["value"], zorder=4)
        markers = ax.plot(
            [k.x for k in data.kinks],
            [k.grad for k in data.kinks],
            "o",
            markersize=8,
            markerfacecolor=COLORS["kink"],
            markeredgecolor=COLORS["kink"],
            linestyle="none",
            zorder=5,
        )
        ax.set_xlim(float(data.x[0]), float(data.x[-1]))
        ax.set_ylim(*_y_limits(data))
        ax.set_xlabel(x)
        ax.grid(True, linewidth=0.4, alpha=0.5)
        handles = [
            Line2D([], [], color=COLORS["value"], linewidth=2),
            Line2D([], [], color=COLORS["grad"], linewidth=2, linestyle=DASHES),
        ]
        labels = [_plain(f"f({x})"), _plain(f"df/d{x}")]
        if data.kinks:
            handles.append(
                Line2D([], [], color=COLORS["kink"], marker="o", linestyle="none")
            )
            labels.append(_plain(f"df/d{x} at a kink ({data.convention} convention)"))
        ax.legend(handles, labels, loc="best", fontsize=9, framealpha=0.9)
        title = f"f = {data.expression}"
        where = [f"{k} = {v:g}" for k, v in data.fixed.items()]
        if data.scalar_reduction:
            where.insert(0, f"{x} a single number")
        if where:
            title += "   (" + ", ".join(where) + ")"
        ax.set_title(_plain(_short(title, 70)), fontsize=11)
        fig.tight_layout()
        fig.canvas.draw()
        height = fig.get_size_inches()[1] * DPI
        pixels = [
            (float(px), float(height - py))
            for px, py in ax.transData.transform(markers[0].get_xydata())
        ]
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return pixels


def _y_limits(data: PlotData) -> tuple[float, float]:
    """Limits that show the curves, ignoring poles (tan, 1/x) and NaN."""
    values = np.concatenate([data.value, data.grad])
    values = values[np.isfinite(values)]
    if not values.size:
        return -1.0, 1.0
    low, high = float(values.min()), float(values.max())
    q5, q95 = (float(q) for q in np.percentile(values, [5, 95]))
    if q95 > q5 and high - low > 5 * (q95 - q5):  # a pole: show the rest
        low, high = q5 - 0.5 * (q95 - q5), q95 + 0.5 * (q95 - q5)
    if high - low < 1e-12:
        return low - 1.0, high + 1.0
    margin = 0.08 * (high - low)
    return low - margin, high + margin


def _plain(text: str) -> str:
    return text.replace("$", r"\$")  # no mathtext: show the text as typed


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
