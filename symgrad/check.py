"""Check: the generated code's gradients against oracles symgrad did not write.

Central finite differences at random smooth points, mpmath at 40 digits (scalar points),
and PyTorch autograd (when it is installed) at random points and at the expression's
kinks (the `kinks_at` of the registry rows it uses, ties between inputs, and the
constants the expression mentions, such as clip's bounds). The references compute the
string as written; symgrad's numbers come from the evaluator. The report is a table
of the largest absolute and relative errors per input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symgrad import graph, oracles, registry
from symgrad.derivation import Derivation
from symgrad.parse import parse
from symgrad.progress import progress as _progress

RANGES = ((-2.0, 2.0), (0.1, 0.9), (1.1, 3.0))
TOLERANCE = {
    "finite differences": 1e-5,
    "mpmath": 1e-10,
    "pytorch": 1e-12,
    "fd jvp": 1e-5,
    "fd hvp": 1e-5,
    "mpmath hessian": 1e-9,
    "pytorch jvp": 1e-12,
    "pytorch hvp": 1e-11,
    "pytorch hessian": 1e-11,
}


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


def _rows(derivation: Derivation) -> list[registry.Rule]:
    """The registry rows the expression uses, as written."""
    parsed = (
        derivation.parsed if derivation.parsed is not None else parse(derivation.text)
    )
    seen: dict[str, registry.Rule] = {}
    for node in graph.ancestors([parsed.output]):
        rule = node.rule
        if rule is not None:
            seen.setdefault(rule.name, rule)
    return list(seen.values())


def _kink_values(derivation: Derivation, rows: list[registry.Rule]) -> list[float]:
    """Where to probe: the coordinates of each used row's `kinks_at`, and the numbers
    the expression mentions (clip's bounds, a threshold), with their negatives."""
    values: set[float] = set()
    for rule in rows:
        for point in rule.kinks_at:
            values.update(float(v) for v in point if np.isfinite(v) and abs(v) < 100)
    parsed = (
        derivation.parsed if derivation.parsed is not None else parse(derivation.text)
    )
    for node in graph.ancestors([parsed.output]):
        if node.is_const and type(node.value) is not bool and np.isfinite(node.value):
            values.update((float(node.value), -float(node.value)))
    return sorted(values)


def _torch_tolerance(rows: list[registry.Rule]) -> float:
    """PyTorch's own accuracy: the loosest `torch_rtol` of the rows used."""
    return max([TOLERANCE["pytorch"], *(rule.torch_rtol for rule in rows)])


def run_check(
    derivation: Derivation, points: int = 20, seed: int = 0, progress: bool = False
) -> Report:
    """Compare symgrad's numbers (the evaluator, `derivation.function`) with finite
    differences, mpmath and PyTorch (the user's string as written, row by row).

    A convention is checked against its own reference: `--convention torch` against
    PyTorch everywhere, kinks included; `--convention jax` against PyTorch only at
    random smooth points, where the conventions agree (the table says so). With
    `progress`, the points compared so far are reported on standard error when it is
    a terminal (`symgrad.progress`).
    """
    with _progress(0, "random points", enabled=progress, unit="point") as bar:
        return _run_check(derivation, points, seed, bar)


def _run_check(derivation: Derivation, points: int, seed: int, bar: Any) -> Report:
    rng = np.random.default_rng(seed)
    module = derivation.function
    inputs = derivation.inputs
    text = derivation.text
    report = Report()
    if not inputs:
        report.skipped.append("the expression has no inputs: nothing to differentiate")
        return report
    rows = _rows(derivation)

    smooth = _smooth_points(derivation, rng, points, (3,))
    if not smooth:
        report.skipped.append("no random point gave a finite value and gradient")
    tried = smooth[: max(1, points // 2)]
    bar.total = len(smooth) + len(tried)  # and PyTorch's, once they are known
    bar.refresh()
    # Finite differences.
    bar.set_description("finite differences")
    acc: dict[str, list[tuple[float, float, bool, int]]] = {n: [] for n in inputs}
    for args in smooth:
        bar.update()
        _, grads = module.value_and_grad(*args)
        want = oracles.finite_differences(module.forward, args)
        for n, g, w in zip(inputs, grads, want, strict=True):
            acc[n].append(_errors(g, w))
    _add_rows(report, "finite differences", acc)

    # mpmath at scalar points, the string as written.
    bar.set_description("mpmath")
    acc = {n: [] for n in inputs}
    failures: dict[str, int] = {}
    for args in tried:
        bar.update()
        point = [float(a.ravel()[0]) for a in args]
        try:
            _, want = oracles.mpmath_gradient(text, inputs, point)
        except Exception as exc:  # noqa: BLE001  (said in the table, never dropped)
            reason = f"{type(exc).__name__}: {exc}"
            failures[reason] = failures.get(reason, 0) + 1
            continue
        _, grads = module.value_and_grad(*point)
        for n, g, w in zip(inputs, grads, want, strict=True):
            acc[n].append(_errors(g, np.asarray(w)))
    _add_rows(report, "mpmath", acc)
    for reason, count in failures.items():
        report.skipped.append(
            f"mpmath could not compute {count} of {len(tried)} points ({reason})"
        )

    # PyTorch, random points and (for its own convention) kinks.
    bar.set_description("importing PyTorch")
    try:
        import torch  # noqa: F401
    except ImportError:
        report.skipped.append("PyTorch is not installed: its comparison was skipped")
        return report
    acc = {n: [] for n in inputs}
    cases = [list(a) for a in smooth]
    label = "pytorch"
    if derivation.convention == "torch":
        kinks = _kink_values(derivation, rows)
        for value in kinks:
            cases.append([np.full(3, value) for _ in inputs])
        if kinks:
            cases.append([np.array(kinks) for _ in inputs])
    else:
        label = "pytorch (smooth)"
        report.skipped.append(
            f"convention {derivation.convention}: PyTorch is compared at random smooth "
            "points only (the conventions differ at kinks); the rows' JAX partials "
            "are checked against jax.grad in tests/test_registry_agreement.py"
        )
    failed = 0
    uses_where = any(rule.name == "where" for rule in rows)
    masked_count = 0
    bar.total += len(cases)
    bar.set_description("PyTorch")
    for args in cases:
        bar.update()
        _, grads = module.value_and_grad(*args)
        try:
            _, want = oracles.torch_value_and_grad(
                text, inputs, dict(zip(inputs, args, strict=True))
            )
        except Exception as exc:  # noqa: BLE001  (said in the table, never dropped)
            failed += 1
            reason = f"{type(exc).__name__}: {exc}"
            continue
        for n, g, w in zip(inputs, grads, want, strict=True):
            if uses_where:  # PyTorch's nan from an untaken branch: by design, not 0
                g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
                masked = np.isnan(w) & ~np.isnan(g)
                masked_count += int(masked.sum())
                g = np.where(masked, np.nan, g)
            acc[n].append(_errors(g, w))
    if masked_count:
        report.skipped.append(
            f"where: at {masked_count} element(s) PyTorch's gradient is nan where "
            "symgrad's is not: the untaken branch sends nothing into symgrad's "
            "gradient (PyTorch issue 68425); those elements are not compared"
        )
    if failed:
        report.skipped.append(
            f"PyTorch could not compute {failed} of {len(cases)} points ({reason})"
        )
    _add_rows(report, label, acc, _torch_tolerance(rows))
    return report


def _add_rows(
    report: Report,
    oracle: str,
    acc: dict[str, list[tuple[float, float, bool, int]]],
    tolerance: float | None = None,
) -> None:
    tolerance = TOLERANCE[oracle] if tolerance is None else tolerance
    for name, results in acc.items():
        if not results:
            continue
        max_abs = max(r[0] for r in results)
        max_rel = max(r[1] for r in results)
        ok = all(r[2] for r in results) and max_rel <= tolerance
        count = sum(r[3] for r in results)
        report.rows.append(Row(oracle, name, count, max_abs, max_rel, ok))


def run_second_order_check(
    derivation: Derivation, points: int = 20, seed: int = 0
) -> Report:
    """jvp, hvp and the Hessian (the evaluator's, which the generated module equals)
    against central differences of the value and of the gradient along random
    directions, mpmath's second derivatives at scalar points, and PyTorch
    (`torch.func.jvp`, its double backward, `torch.autograd.functional.hessian`) at
    random points and kinks. Where PyTorch's two second orders (double backward and
    forward-over-reverse) disagree with each other (x**y at y = 0), or give nan,
    PyTorch is no reference there (the table says how often)."""
    rng = np.random.default_rng(seed)
    f = derivation.function
    inputs = derivation.inputs
    text = derivation.text
    report = Report()
    if not inputs:
        report.skipped.append("the expression has no inputs: nothing to differentiate")
        return report
    rows = _rows(derivation)
    smooth = _smooth_points(derivation, rng, points, (3,))
    directions = [[rng.normal(size=a.shape) for a in args] for args in smooth]

    # Central differences: of the value along v (jvp), of the gradient (hvp).
    jvp_acc: dict[str, list[tuple[float, float, bool, int]]] = {"(all)": []}
    hvp_acc: dict[str, list[tuple[float, float, bool, int]]] = {n: [] for n in inputs}
    for args, v in zip(smooth, directions, strict=True):
        h = 1e-6 * max(1.0, max(float(np.abs(a).max()) for a in args))
        up = [a + h * d for a, d in zip(args, v, strict=True)]
        down = [a - h * d for a, d in zip(args, v, strict=True)]
        _, tangent = f.jvp(args, v)
        want = (f.forward(*up) - f.forward(*down)) / (2 * h)
        jvp_acc["(all)"].append(_errors(tangent, want))
        _, products = f.hvp(args, v)
        grads_up, grads_down = f.backward(*up), f.backward(*down)
        for n, p, gu, gd in zip(inputs, products, grads_up, grads_down, strict=True):
            hvp_acc[n].append(_errors(p, (gu - gd) / (2 * h)))
    _add_rows(report, "fd jvp", jvp_acc)
    _add_rows(report, "fd hvp", hvp_acc)

    # mpmath's Hessian at scalar points.
    acc: dict[str, list[tuple[float, float, bool, int]]] = {n: [] for n in inputs}
    failures: dict[str, int] = {}
    for args in smooth[: max(1, points // 4)]:
        point = [float(a.ravel()[0]) for a in args]
        try:
            exact = oracles.mpmath_hessian(text, inputs, point)
        except Exception as exc:  # noqa: BLE001  (said in the table, never dropped)
            reason = f"{type(exc).__name__}: {exc}"
            failures[reason] = failures.get(reason, 0) + 1
            continue
        got = f.hessian_matrix(*point)
        for i, n in enumerate(inputs):
            acc[n].append(_errors(got[i], np.asarray(exact[i])))
    _add_rows(report, "mpmath hessian", acc)
    for reason, count in failures.items():
        report.skipped.append(f"mpmath's Hessian failed at {count} point(s) ({reason})")

    try:
        import torch  # noqa: F401
    except ImportError:
        report.skipped.append("PyTorch is not installed: its comparison was skipped")
        return report
    cases = [(list(a), v) for a, v in zip(smooth, directions, strict=True)]
    if derivation.convention == "torch":
        for value in _kink_values(derivation, rows):
            cases.append(
                (
                    [np.full(3, value) for _ in inputs],
                    [rng.normal(size=3) for _ in inputs],
                )
            )
    tolerance = _torch_tolerance(rows)
    jvp_acc = {"(all)": []}
    hvp_acc = {n: [] for n in inputs}
    hessian_acc: dict[str, list[tuple[float, float, bool, int]]] = {
        n: [] for n in inputs
    }
    unknown = 0
    for args, v in cases:
        values = dict(zip(inputs, args, strict=True))
        vectors = dict(zip(inputs, v, strict=True))
        _, tangent = f.jvp(args, v)
        _, want_tangent = oracles.torch_jvp(text, inputs, values, vectors)
        jvp_acc["(all)"].append(_errors(tangent, _known(want_tangent)))
        _, products = f.hvp(args, v)
        want = oracles.torch_hvp(text, inputs, values, vectors)
        other = oracles.torch_forward_over_reverse(text, inputs, values, vectors)
        for n, p, w, o in zip(inputs, products, want, other, strict=True):
            agree = np.isclose(w, o, rtol=1e-12, atol=0, equal_nan=True)
            unknown += int((~agree | np.isnan(w)).sum())
            hvp_acc[n].append(
                _errors(np.where(agree, p, np.nan), np.where(agree, w, np.nan))
            )
    for args in smooth[: max(1, points // 4)]:
        values = dict(zip(inputs, args, strict=True))
        got = f.hessian(*args)
        want_blocks = oracles.torch_hessian(text, inputs, values)
        for i, n in enumerate(inputs):
            for j in range(len(inputs)):
                hessian_acc[n].append(_errors(got[i][j], _known(want_blocks[i][j])))
    if unknown:
        report.skipped.append(
            f"hvp: at {unknown} element(s) PyTorch's double backward is nan or differs "
            "from its own forward-over-reverse: no reference there"
        )
    _add_rows(report, "pytorch jvp", jvp_acc, max(tolerance, TOLERANCE["pytorch jvp"]))
    _add_rows(
        report, "pytorch hvp", hvp_acc, max(10 * tolerance, TOLERANCE["pytorch hvp"])
    )
    _add_rows(
        report,
        "pytorch hessian",
        hessian_acc,
        max(10 * tolerance, TOLERANCE["pytorch hessian"]),
    )
    return report


def _known(want: np.ndarray) -> np.ndarray:
    """PyTorch's numbers, nan (no reference) kept as nan."""
    return np.asarray(want, dtype=np.float64)
