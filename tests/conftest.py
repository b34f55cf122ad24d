"""Shared helpers for the tests."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `symgrad ARGS` as a user would, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "symgrad.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture
def cli():
    return run_cli


def compiled(derivation) -> types.ModuleType:
    """The generated module of a derivation, compiled in memory (symgrad's own
    generated source, never the user's text)."""
    module = types.ModuleType("symgrad_generated")
    exec(compile(derivation.module_source(), "<generated>", "exec"), module.__dict__)
    return module
