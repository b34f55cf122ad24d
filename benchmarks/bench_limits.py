"""The floor under a NumPy module: for each case of bench_value_and_grad.py, the time
of the fewest NumPy calls that compute its value and gradient with PyTorch's values
(kinks, nan and aliasing included), beside symgrad's generated module and the best peer.

A module that imports only NumPy makes one pass over memory per NumPy call; jax.jit
fuses the whole expression into one loop, and PyTorch's vectorised transcendental
kernels (cos, erf) are several times faster than NumPy's. Where symgrad is behind a
peer, this table says whether the module is at the floor (the floor itself is behind)
or above it (the module does more than it must).

    python benchmarks/bench_limits.py --repeat 11
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

N = 10**6


def _erf(x: np.ndarray) -> np.ndarray:
    from symgrad.runtime import HELPERS

    return HELPERS["_erf"](x)


def _floors(rng: np.random.Generator) -> dict[str, tuple[str, dict, Callable]]:
    """key -> (expression, inputs, the fewest NumPy calls)."""
    x = 2 * rng.standard_normal(N)
    y = rng.standard_normal(N)
    u = rng.uniform(0, 7, N)
    small = rng.standard_normal(N) / np.sqrt(N)
    sign = np.sign(rng.standard_normal(N))

    def abs_(x):  # value, and sign with nan -> 0 (PyTorch's sign; np.sign gives nan)
        s = np.sign(x)
        s[s != s] = 0
        return np.abs(x), s

    def exp_(
        x,
    ):  # the gradient is the value: a copy, or the caller holds one array twice
        v = np.exp(x)
        return v, v.copy()

    def sum_sq(x, y):
        return x * x + y * y, 2 * x, 2 * y

    def max_(x):  # ties share evenly: the mask, its count, the selected 1/count
        m = np.max(x)
        ties = x == m
        return m, np.where(ties, 1 / np.count_nonzero(ties), 0.0)

    def clip_(x):
        inside = (x >= 1.5) & (x <= 5.5)
        return np.clip(x, 1.5, 5.5), inside.astype(x.dtype)

    def cos_sq(x):  # cos and sin of one argument: two libm passes
        x2 = x * x
        return np.cos(x2), -2 * x * np.sin(x2)

    def norm_(x):  # sum of squares, then one scaled pass
        r = np.sqrt(np.sum(x * x))
        z = r * r + 1
        return np.sin(np.cos(z)), x * (np.cos(np.cos(z)) * -np.sin(z) * 2)

    def mean_(x):
        h = x + 2
        return np.mean(h * h * 2), h * (4 / N)

    def erf_(x):
        return _erf(x), np.exp(-(x * x)) * (2 / np.sqrt(np.pi))

    def gelu(x):
        e = _erf(x / np.sqrt(2))
        d = np.exp(-(x * x) / 2) * (0.5 / np.sqrt(np.pi / 2))
        return 0.5 * x * (1 + e), 0.5 * (1 + e) + x * d

    def logistic(x, y, w, b):
        z = -y * (w * x + b)
        e = np.exp(z)
        s = e / (1 + e)
        return (
            np.log1p(e),
            -s * (w * x + b),
            np.sum(-s * y * x),
            np.sum(-s * y),
            -s * y * w,
        )

    return {
        "erf": ("erf(x)", {"x": x}, erf_),
        "abs": ("abs(x)", {"x": x}, abs_),
        "exp": ("exp(x)", {"x": x}, exp_),
        "sum_sq": ("x**2 + y**2", {"x": x, "y": y}, sum_sq),
        "max": ("max(x)", {"x": x}, max_),
        "clip": ("clip(x, 1.5, 5.5)", {"x": u}, clip_),
        "cos_sq": ("cos(x**2)", {"x": x}, cos_sq),
        "norm": ("sin(cos(norm(x)**2 + 1))", {"x": small}, norm_),
        "mean": ("mean((x + 2)*(x + 2)*2)", {"x": y}, mean_),
        "gelu": ("0.5*x*(1 + erf(x/sqrt(2)))", {"x": x}, gelu),
        "logistic": (
            "log(1 + exp(-y*(w*x + b)))",
            {"x": y, "y": sign, "w": np.float64(0.7), "b": np.float64(-0.3)},
            logistic,
        ),
    }


def _module(expression: str, folder: Path):
    from symgrad.derivation import derive

    path = folder / f"m{abs(hash(expression))}.py"
    path.write_text(derive(expression).module_source(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _median_ms(
    fn: Callable[[], object], repeat: int, clock: Callable[[], float]
) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        start = clock()
        for _ in range(5):
            fn()
        times.append((clock() - start) / 5)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    try:
        import symgrad  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    np.seterr(all="ignore")
    rng = np.random.default_rng(0)
    print(
        f"N = {N:.0e} float64, median of {args.repeat} x 5 calls, {args.clock} clock, "
        f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())}, NumPy {np.__version__}"
    )
    print()
    print("| case | symgrad v&g ms | NumPy floor ms | module / floor |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for expression, inputs, floor in _floors(rng).values():
            module = _module(expression, Path(tmp))
            ordered = [inputs[n] for n in module.INPUTS]
            value = module.value_and_grad(*ordered)[0]
            # the floor computes the same value (it is a floor, not a shortcut)
            np.testing.assert_allclose(floor(**inputs)[0], value, rtol=1e-9, atol=1e-12)
            mine = _median_ms(
                functools.partial(module.value_and_grad, *ordered), args.repeat, clock
            )
            least = _median_ms(functools.partial(floor, **inputs), args.repeat, clock)
            print(f"| `{expression}` | {mine:.2f} | {least:.2f} | {mine / least:.2f} |")
    print()
    x = 2 * rng.standard_normal(N)
    trig = _median_ms(lambda: (np.cos(x), np.sin(x)), args.repeat, clock)
    erf = _median_ms(lambda: _erf(x), args.repeat, clock)
    line = (
        f"np.cos + np.sin of {N:.0e}: {trig:.2f} ms; symgrad's NumPy erf: {erf:.2f} ms"
    )
    try:
        import torch

        torch.set_num_threads(1)
        t = torch.from_numpy(x)
        trig = _median_ms(lambda: (torch.cos(t), torch.sin(t)), args.repeat, clock)
        erf = _median_ms(lambda: torch.erf(t), args.repeat, clock)
        line += f"; torch.cos + torch.sin: {trig:.2f} ms; torch.erf: {erf:.2f} ms"
    except ImportError:
        pass
    print(line)


if __name__ == "__main__":
    main()
