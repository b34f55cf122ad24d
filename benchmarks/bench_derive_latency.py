"""Interactive latency of `symgrad derive`, and the time formula shortening takes.

1. Cold start: `symgrad derive "cos(x**2)"` in a fresh Python process against
   `python -c "import sympy"` (the floor: symgrad prints with SymPy). The two commands
   alternate, `--runs` times each; the table gives the median and the minimum of the
   wall time and of the child's CPU time (user + system, steadier on a loaded machine)
   and their ratio. Issue 10's target: derive within 1.5x of importing SymPy.
2. Shortening (`symgrad.simplify.shorten`) in one warm process, on formulas chosen to
   be slow: nested fractions, high powers, several inputs. It prints the slowest.

    python benchmarks/bench_derive_latency.py            # ~30 s
    python benchmarks/bench_derive_latency.py --runs 21
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "import sympy": [sys.executable, "-c", "import sympy"],
    'symgrad derive "cos(x**2)"': [
        sys.executable,
        "-c",
        "import sys; from symgrad.cli import main; sys.exit(main())",
        "derive",
        "cos(x**2)",
    ],
}
SLOW_FORMULAS = [
    "atan((x + y)/(1 - x*y)) + asin(x/(1 + y**2)) + acosh(1 + x**2 + y**2)",
    "(x**2 + y**2 + z**2)**(x*y*z)/(1 + x*y + y*z + z*x)",
    "x*(x+1)*(x+2)*(x+3)*(x+4)*(x+5)*(x+6)*(x+7)*(x+8)*(x+9)",
    "atanh(1/(2*x + 1/(3*x + 1/(4*x))))",
    "1/(1 - 1/(x + 1)**500)",
    "(x + 1)**1000/(x - 1)",
    "((x**2 + 1)/(x - 1))**3/(x + 2)",
    "exp(x)*sin(x)*cos(x)*tan(x)*log(x)*sqrt(x)",
    "exp(-(x - mu)**2/(2*s**2))/(s*sqrt(2*pi))",
    "x**x**x",
    "(x**3 + x)**(5*x + 2)",
    "0.5*x*(1 + erf(x/sqrt(2)))",
]


def cold_start(runs: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (
                after.ru_stime - before.ru_stime
            )
            times[name].append((wall, cpu))
    print(
        f"cold start, {runs} runs each (seconds; load average {os.getloadavg()[0]:.2f})"
    )
    print(
        f"{'command':30} {'wall med':>9} {'wall min':>9} {'cpu med':>9} {'cpu min':>9}"
    )
    summary = {}
    for name, pairs in times.items():
        walls, cpus = [w for w, _ in pairs], [c for _, c in pairs]
        row = (
            statistics.median(walls),
            min(walls),
            statistics.median(cpus),
            min(cpus),
        )
        summary[name] = row
        print(f"{name:30} " + " ".join(f"{v:9.3f}" for v in row))
    base, derive = summary.values()
    ratios = " ".join(f"{d / b:9.2f}" for d, b in zip(derive, base, strict=True))
    print(f"{'ratio derive / import sympy':30} {ratios}")


def shortening() -> None:
    sys.path.insert(0, str(ROOT))
    import sympy as sp

    from symgrad import program, simplify
    from symgrad.parse import parse

    rows = []
    for text in SLOW_FORMULAS:
        parsed = parse(text)
        built = program.build(parsed.expr, parsed.inputs)
        for name, formula in program.gradient_expressions(built).items():
            start = time.perf_counter()
            short = simplify.shorten(formula)
            elapsed = time.perf_counter() - start
            rows.append(
                (elapsed, sp.count_ops(formula), sp.count_ops(short), name, text)
            )
    rows.sort(reverse=True)
    print("\nshortening, slowest first (one warm process)")
    print(f"{'ms':>7} {'ops':>9}  formula")
    for elapsed, before, after, name, text in rows[:8]:
        print(f"{elapsed * 1e3:7.1f} {before:4} -> {after:<4} d/d{name} {text}")
    print(f"total {sum(r[0] for r in rows):.2f} s for {len(rows)} formulas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    cold_start(args.runs)
    shortening()


if __name__ == "__main__":
    main()
