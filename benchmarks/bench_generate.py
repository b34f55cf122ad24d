"""Time `symgrad generate` on the Rosenbrock sum with n scalar inputs, as users do.

Each size runs in a fresh process (`symgrad generate - -o ... < expression`), so the
time includes Python's start and the imports, as it does for a user; the module it
writes is then imported and checked against SciPy's own `rosen` and `rosen_der` at a
random point. Peak memory is the child's maximum resident size; its CPU time (user +
system) is steadier than the wall clock on a shared machine.

    python benchmarks/bench_generate.py                 # n = 100, 1,000, 10,000
    python benchmarks/bench_generate.py --n 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rosenbrock(n: int) -> str:
    return " + ".join(
        f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1)
    )


def run_once(text: str, path: Path) -> tuple[float, float, float]:
    """Wall seconds, peak MB and CPU seconds of one `symgrad generate` in a child
    process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "symgrad.cli",
            "generate",
            "-",
            "-o",
            str(path),
            "--force",
        ],
        input=text,
        text=True,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu
    return seconds, max(usage.ru_maxrss, before) / 1024, cpu


def check(path: Path, n: int) -> tuple[float, float]:
    """Relative errors of the module's value and gradient against SciPy's."""
    from scipy.optimize import rosen, rosen_der

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    x = np.random.default_rng(0).uniform(-1.5, 1.5, n)
    index = [int(name[1:]) for name in module.INPUTS]
    start = time.perf_counter()
    value, grads = module.value_and_grad(*(x[i] for i in index))
    call = time.perf_counter() - start
    gradient = np.empty(n)
    gradient[index] = grads
    want = rosen_der(x)
    value_error = abs(value - rosen(x)) / abs(rosen(x))
    grad_error = float(np.max(np.abs(gradient - want) / np.maximum(np.abs(want), 1)))
    return max(value_error, grad_error), call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}")
    print(
        "| n | generate s (median) | min | CPU s (median) | peak MB | "
        "rel. error vs SciPy | value_and_grad ms |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.n:
            text = rosenbrock(n)
            path = Path(folder) / f"rosen{n}.py"
            runs = [run_once(text, path) for _ in range(args.repeat)]
            times = [t for t, _, _ in runs]
            cpu = statistics.median(c for _, _, c in runs)
            error, call = check(path, n)
            print(
                f"| {n:,} | {statistics.median(times):.2f} | {min(times):.2f} | "
                f"{cpu:.2f} | {max(m for _, m, _ in runs):.0f} | {error:.1e} | "
                f"{call * 1e3:.1f} |"
            )


if __name__ == "__main__":
    main()
