"""`symgrad check`: generated code against finite differences, mpmath and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from symgrad import check, oracles


def test_check_passes_on_seeds_and_kinks(cli) -> None:
    for text in ["cos(x**2)", "clip(x, 1.5, 5.5)", "max(x, y)", "abs(x) * erf(y)"]:
        result = cli("check", text, "--points", "5")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "agreement: all checks pass" in result.stdout
        for oracle in ("finite differences", "mpmath", "pytorch"):
            assert oracle in result.stdout


def test_check_fails_on_disagreement(monkeypatch) -> None:
    real = oracles.finite_differences

    def off_by_a_bit(forward, args, step=1e-6):
        return [g + 1e-3 for g in real(forward, args, step)]

    monkeypatch.setattr(oracles, "finite_differences", off_by_a_bit)
    report = check.run_check(symgrad.derive("x**3"), points=3)
    assert not report.ok
    assert "DISAGREES" in report.table()
    from symgrad.cli import main

    assert main(["check", "x**3", "--points", "3"]) == 1  # exit status 1


def test_check_reports_every_input() -> None:
    report = check.run_check(symgrad.derive("x * y + sin(z)"), points=3)
    assert report.ok
    assert {row.input for row in report.rows} == {"x", "y", "z"}
    assert all(np.isfinite(row.max_abs) for row in report.rows)


def test_digamma_passes_within_pytorchs_own_accuracy() -> None:
    # torch.polygamma(1, x) is good to ~5e-10; the row's torch_rtol says so, and -1 (a
    # pole, where PyTorch's trigamma is 6.6e32 and ours inf) is not a kink of the rows
    report = check.run_check(symgrad.derive("digamma(x)"), points=5)
    assert report.ok, report.table()


def test_a_convention_is_checked_against_its_own_reference(cli) -> None:
    result = cli("check", "abs(x)", "--convention", "jax", "--points", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pytorch (smooth)" in result.stdout
    assert "convention jax" in result.stdout  # the table says what was compared


def test_pytorch_runs_the_string_as_written() -> None:
    # SymPy simplifies x/x to 1; PyTorch computing the string gives nan at 0, as ours
    value, [grad] = oracles.torch_value_and_grad("x/x", ["x"], {"x": np.zeros(2)})
    assert np.isnan(value).all() and np.isnan(grad).all()
    report = check.run_check(symgrad.derive("x/x"), points=3)
    assert report.ok, report.table()


def test_a_reference_that_cannot_compute_is_reported(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise oracles.NoReference("erf: no mpmath reference")

    monkeypatch.setattr(oracles, "mpmath_gradient", broken)
    report = check.run_check(symgrad.derive("erf(x)"), points=4)
    assert "mpmath could not compute 2 of 2 points" in report.table()


def test_where_masking_is_reported_not_a_disagreement() -> None:
    # PyTorch's gradient is nan at x <= 0 (its untaken sqrt branch); symgrad's is 0
    report = check.run_check(symgrad.derive("where(x > 0, sqrt(x), 0)"), points=3)
    assert report.ok, report.table()
    assert "untaken branch" in report.table()
    # a real disagreement inside a where is still one
    bad = check.run_check(symgrad.derive("where(x > 0, x, 0)"), points=3)
    assert bad.ok


@pytest.mark.parametrize(
    "text",
    ["cos(x**2)", "clip(x, 1.5, 5.5)", "x**2 + y**2", "sin(cos(norm(x)**2 + 1))"],
)
def test_second_order_check_passes(cli, text) -> None:
    result = cli("check", text, "--order", "2", "--points", "6")
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.split("second order")[1]
    for oracle in ("fd jvp", "fd hvp", "mpmath hessian", "pytorch jvp", "pytorch hvp"):
        assert oracle in table


def test_second_order_check_catches_a_wrong_hvp(monkeypatch) -> None:
    from symgrad.check import run_second_order_check

    derivation = symgrad.derive("x**3 * y")
    function = derivation.function
    right = function.hvp

    def wrong(primals, vectors, grad_output=None):
        value, products = right(primals, vectors, grad_output)
        return value, tuple(p * (1 + 1e-3) for p in products)

    monkeypatch.setattr(function, "hvp", wrong)
    report = run_second_order_check(derivation, points=4)
    bad = {r.oracle for r in report.rows if not r.ok}
    assert {"fd hvp", "pytorch hvp"} <= bad and not report.ok
