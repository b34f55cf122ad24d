"""`symgrad check`: generated code against finite differences, mpmath and PyTorch."""

from __future__ import annotations

import numpy as np

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
