"""Check: the generated code's gradients against oracles symgrad did not write.

Central finite differences at random smooth points, mpmath at 40 digits (scalar points),
and PyTorch autograd (when it is installed) at random points and at the expression's
kinks (0, ±1, ties between inputs, and the constants the expression mentions, such as
clip's bounds). The report is a table of the largest absolute and relative errors per
input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symgrad import oracles
from symgrad.derivation import Derivation

RANGES = ((-2.0, 2.0), (0.1, 0.9), (1.1, 3.0))
TOLERANCE = {"finite differences": 1e-5, "mpmath": 1e-10, "pytorch": 1e-12}


@dataclass
class Row:
    oracle: str
    input: str
    points: int
    max_abs: float
    max_rel: float
    ok: bool


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        lines = [
            f"{'oracle':<20} {'input':<10} {'points':>6} {'max abs err':>12} "
            f"{'max rel err':>12}  result"
        ]
        for r in self.rows:
            lines.append(
                f"{r.oracle:<20} {r.input:<10} {r.points:>6} {r.max_abs:>12.3e} "
                f"{r.max_rel:>12.3e}  {'ok' if r.ok else 'DISAGREES'}"
            )
        lines.extend(f"note: {s}" for s in self.skipped)
        lines.append("agreement: " + ("all checks pass" if self.ok else "FAILED"))
        return "\n".join(lines)


def _errors(got: np.ndarray, want: np.ndarray) -> tuple[float, float, bool, int]:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    same_inf = np.isinf(want) & (got == want)
    mask = ~(both_nan | same_inf)
    if not np.any(mask):
        return 0.0, 0.0, bool(np.all(both_nan | same_inf)), 0
    diff = np.abs(got[mask] - want[mask])
    if np.any(np.isnan(diff)):
        return float("nan"), float("nan"), False, int(mask.sum())
    scale = np.maximum(np.abs(want[mask]), 1.0)
    return float(diff.max()), float((diff / scale).max()), True, int(mask.sum())


def _smooth_points(
    derivation: Derivation, rng: np.random.Generator, count: int, shape: tuple[int, ...]
) -> list[list[np.ndarray]]:
    module = derivation.function
    points: list[list[np.ndarray]] = []
    attempts = 0
    while len(points) < count and attempts < count * 20:
        attempts += 1
        low, high = RANGES[attempts % len(RANGES)]
        args = [rng.uniform(low, high, size=shape) for _ in derivation.inputs]
        value, grads = module.value_and_grad(*args)
        if np.all(np.isfinite(value)) and all(np.all(np.isfinite(g)) for g in grads):
            points.append(args)
    return points


def _kink_values(expr: sp.Expr) -> list[float]:
    values = {0.0, 1.0, -1.0, 0.5}
    for atom in expr.atoms(sp.Number):
        if atom.is_finite:
            values.add(float(atom))
            values.add(-float(atom))
    return sorted(values)


def run_check(derivation: Derivation, points: int = 20, seed: int = 0) -> Report:
    """Compare the generated code with finite differences, mpmath and PyTorch."""
    rng = np.random.default_rng(seed)
    module = derivation.function
    inputs = derivation.inputs
    report = Report()
    if not inputs:
        report.skipped.append("the expression has no inputs: nothing to differentiate")
        return report

    smooth = _smooth_points(derivation, rng, points, (3,))
    if not smooth:
        report.skipped.append("no random point gave a finite value and gradient")
    # Finite differences.
    acc: dict[str, list[tuple[float, float, bool, int]]] = {n: [] for n in inputs}
    for args in smooth:
        _, grads = module.value_and_grad(*args)
        want = oracles.finite_differences(module.forward, args)
        for n, g, w in zip(inputs, grads, want, strict=True):
            acc[n].append(_errors(g, w))
    _add_rows(report, "finite differences", acc)

    # mpmath at scalar points.
    acc = {n: [] for n in inputs}
    for args in smooth[: max(1, points // 2)]:
        point = [float(a.ravel()[0]) for a in args]
        try:
            _, want = oracles.mpmath_gradient(derivation.expression, inputs, point)
        except (TypeError, ValueError, ZeroDivisionError, NameError):
            continue
        _, grads = module.value_and_grad(*point)
        for n, g, w in zip(inputs, grads, want, strict=True):
            acc[n].append(_errors(g, np.asarray(w)))
    _add_rows(report, "mpmath", acc)

    # PyTorch, random points and kinks.
    try:
        import torch  # noqa: F401
    except ImportError:
        report.skipped.append("PyTorch is not installed: its comparison was skipped")
        return report
    acc = {n: [] for n in inputs}
    kinks = _kink_values(derivation.expression)
    cases = [list(a) for a in smooth]
    for value in kinks:
        cases.append([np.full(3, value) for _ in inputs])
    cases.append([np.array(kinks) for _ in inputs])
    for args in cases:
        value, grads = module.value_and_grad(*args)
        _, want = oracles.torch_value_and_grad(
            derivation.expression, inputs, dict(zip(inputs, args, strict=True))
        )
        for n, g, w in zip(inputs, grads, want, strict=True):
            acc[n].append(_errors(g, w))
    _add_rows(report, "pytorch", acc)
    return report


def _add_rows(
    report: Report, oracle: str, acc: dict[str, list[tuple[float, float, bool, int]]]
) -> None:
    tolerance = TOLERANCE[oracle]
    for name, results in acc.items():
        if not results:
            continue
        max_abs = max(r[0] for r in results)
        max_rel = max(r[1] for r in results)
        ok = all(r[2] for r in results) and max_rel <= tolerance
        count = sum(r[3] for r in results)
        report.rows.append(Row(oracle, name, count, max_abs, max_rel, ok))
