"""Value-and-gradient speed (and peak memory) of symgrad's generated NumPy modules.

Compares, in one process, symgrad's generated `value_and_grad` (and its `forward`
alone) with PyTorch eager autograd, `jax.jit` of `jax.vjp`, HIPS autograd and
`sympy.lambdify(cse=True)` of SymPy's own derivatives, for N float64 inputs, the
gradient being that of the sum of the output (grad_output = ones). See README.md in
this folder for what each peer computes and how it is timed.

    python benchmarks/bench_value_and_grad.py            # timing table, N = 1e6
    python benchmarks/bench_value_and_grad.py --memory   # also the memory table
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

RTOL = 1e-9  # agreement of each peer's value and gradients with symgrad's
ATOL_SCALE = 1e-12  # atol = ATOL_SCALE * max|symgrad's array| (see README)
MEMORY_N = 10_000_000
MEMORY_CASES = ("erf", "exp", "cos_sq", "gelu", "logistic")
MANY_CORE = False  # --many-core: set in main before any peer is made

PEERS = ("torch", "jax", "autograd", "lambdify")


# ---------------------------------------------------------------------------
# The cases. `fn(m, **inputs)` is the expression transcribed once, evaluated with
# the namespace `m` of torch, jax.numpy or autograd.numpy (see _namespaces).


@dataclass
class Case:
    key: str
    expr: str  # what symgrad (and SymPy's parser) reads
    fn: Callable
    make: Callable  # (rng, n) -> {name: np.ndarray or float}
    scalars: tuple[str, ...] = field(default=())  # inputs that are scalars

    def inputs(self, n: int, seed: int = 0) -> dict:
        return self.make(np.random.default_rng(seed), n)


def _normal(scale: float = 2.0):
    return lambda rng, n: {"x": scale * rng.standard_normal(n)}


CASES = [
    Case("erf", "erf(x)", lambda m, x: m.erf(x), _normal()),
    Case("abs", "abs(x)", lambda m, x: m.abs(x), _normal()),
    Case("exp", "exp(x)", lambda m, x: m.exp(x), _normal()),
    Case(
        "sum_sq",
        "x**2 + y**2",
        lambda m, x, y: x**2 + y**2,
        lambda rng, n: {"x": rng.standard_normal(n), "y": rng.standard_normal(n)},
    ),
    Case("max", "max(x)", lambda m, x: m.max(x), _normal()),
    Case(
        "clip",
        "clip(x, 1.5, 5.5)",
        lambda m, x: m.clip(x, 1.5, 5.5),
        lambda rng, n: {"x": rng.uniform(0.0, 7.0, n)},
    ),
    Case("cos_sq", "cos(x**2)", lambda m, x: m.cos(x**2), _normal()),
    Case(
        "norm",
        "sin(cos(norm(x)**2 + 1))",
        lambda m, x: m.sin(m.cos(m.norm(x) ** 2 + 1)),
        # norm(x)**2 of order 1, not of order N: a well-conditioned value, so that
        # the peers' different summation orders agree to rtol 1e-9
        lambda rng, n: {"x": rng.standard_normal(n) / math.sqrt(n)},
    ),
    Case(
        "mean",
        "mean((x + 2)*(x + 2)*2)",
        lambda m, x: m.mean((x + 2) * (x + 2) * 2),
        _normal(1.0),
    ),
    Case(
        "gelu",
        "0.5*x*(1 + erf(x/sqrt(2)))",
        lambda m, x: 0.5 * x * (1 + m.erf(x / math.sqrt(2))),
        _normal(),
    ),
    Case(
        "logistic",
        "log(1 + exp(-y*(w*x + b)))",
        lambda m, x, y, w, b: m.log(1 + m.exp(-y * (w * x + b))),
        lambda rng, n: {
            "x": rng.standard_normal(n),
            "y": rng.choice(np.array([-1.0, 1.0]), n),
            "w": 0.7,
            "b": -0.3,
        },
        scalars=("w", "b"),
    ),
]
CASE_BY_KEY = {case.key: case for case in CASES}


# ---------------------------------------------------------------------------
# Peers. Each is built once per case (outside timing) into an object with
# `run()` -> (value, {name: gradient}) as NumPy-convertible objects; `run` is what is
# timed.


class NotExpressible(Exception):
    """The peer cannot express this case; the message says why."""


def _load_symgrad_module(case: Case, directory: Path):
    from symgrad.derivation import derive

    path = directory / f"sg_{case.key}.py"
    path.write_text(derive(case.expr).module_source())
    spec = importlib.util.spec_from_file_location(f"sg_{case.key}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SymgradPeer:
    def __init__(self, case: Case, inputs: dict, directory: Path, threads: int | None):
        self.module = _load_symgrad_module(case, directory)
        self.names = tuple(self.module.INPUTS)
        self.args = [inputs[name] for name in self.names]
        self.threads = threads

    def run(self):
        value, grads = self.module.value_and_grad(*self.args, threads=self.threads)
        return value, dict(zip(self.names, grads, strict=True))

    def run_one_thread(self):
        return self.module.value_and_grad(*self.args)

    def forward(self):
        return self.module.forward(*self.args)


def _torch_namespace(torch):
    return SimpleNamespace(
        erf=torch.erf,
        abs=torch.abs,
        exp=torch.exp,
        log=torch.log,
        sin=torch.sin,
        cos=torch.cos,
        max=torch.max,  # full reduction: ties share the gradient evenly
        clip=torch.clamp,
        norm=torch.linalg.vector_norm,
        mean=torch.mean,
    )


class TorchPeer:
    def __init__(self, case: Case, inputs: dict):
        import torch

        if not MANY_CORE:
            torch.set_num_threads(1)
        self.torch = torch
        self.m = _torch_namespace(torch)
        self.fn = case.fn
        self.inputs = inputs
        self.scalars = case.scalars

    def _leaf(self, name, value):
        torch = self.torch
        if name in self.scalars:
            return torch.tensor(value, dtype=torch.float64, requires_grad=True)
        return torch.from_numpy(value).requires_grad_(True)  # shares the memory

    def run(self):
        leaves = {name: self._leaf(name, v) for name, v in self.inputs.items()}
        f = self.fn(self.m, **leaves)
        grads = self.torch.autograd.grad(f.sum(), list(leaves.values()))
        return f.detach(), dict(zip(leaves, grads, strict=True))


class JaxPeer:
    def __init__(self, case: Case, inputs: dict):
        import jax
        import jax.numpy as jnp
        import jax.scipy.special

        self.jax = jax
        m = SimpleNamespace(
            erf=jax.scipy.special.erf,
            abs=jnp.abs,
            exp=jnp.exp,
            log=jnp.log,
            sin=jnp.sin,
            cos=jnp.cos,
            max=jnp.max,
            clip=jnp.clip,
            norm=jnp.linalg.norm,
            mean=jnp.mean,
        )
        names = tuple(inputs)
        fn = case.fn

        def f(*args):
            return fn(m, **dict(zip(names, args, strict=True)))

        def value_and_vjp(*args):
            value, vjp = jax.vjp(f, *args)
            return value, vjp(jnp.ones_like(value))

        self.names = names
        self.compiled = jax.jit(value_and_vjp)
        self.args = [
            jax.device_put(np.asarray(inputs[name], dtype=np.float64)) for name in names
        ]
        start = time.perf_counter()
        jax.block_until_ready(self.compiled(*self.args))  # compile
        self.compile_seconds = time.perf_counter() - start

    def run(self):
        value, grads = self.jax.block_until_ready(self.compiled(*self.args))
        return value, dict(zip(self.names, grads, strict=True))


class AutogradPeer:
    def __init__(self, case: Case, inputs: dict):
        import autograd
        import autograd.numpy as anp
        import autograd.scipy.special

        m = SimpleNamespace(
            erf=autograd.scipy.special.erf,
            abs=anp.abs,
            exp=anp.exp,
            log=anp.log,
            sin=anp.sin,
            cos=anp.cos,
            max=anp.max,
            clip=anp.clip,
            norm=anp.linalg.norm,
            mean=anp.mean,
        )
        names = tuple(inputs)
        fn = case.fn

        def packed(args):
            return fn(m, **dict(zip(names, args, strict=True)))

        self.anp = anp
        self.names = names
        self.make_vjp = autograd.make_vjp(packed)
        self.args = tuple(inputs[name] for name in names)

    def run(self):
        vjp, value = self.make_vjp(self.args)
        grads = vjp(self.anp.ones_like(value))
        return value, dict(zip(self.names, grads, strict=True))


class LambdifyPeer:
    """sympy.lambdify(cse=True) of SymPy's parse of the expression and its diff.

    Elementwise expressions: one lambdified function returns [f, df/dv for each
    input v]; a scalar input's gradient is the sum of its elementwise partial.
    A reduction r = norm(h(x)) or mean(h(x)) inside F(r): SymPy parses the
    expression with r as a symbol; [h, dh/dx] and [F, dF/dr] are lambdified and
    the chain rule through the reduction is NumPy written here:
    dr/dx = h*dh/dx / r (norm), dh/dx / N (mean).
    """

    MODULES = ["scipy", "numpy"]

    def __init__(self, case: Case, inputs: dict):
        import sympy

        self.sympy = sympy
        self.inputs = inputs
        self.scalars = case.scalars
        syms = {name: sympy.Symbol(name, real=True) for name in inputs}
        r = sympy.Symbol("r", real=True)
        reductions = []

        def reduction(kind):
            def record(arg):
                reductions.append((kind, arg))
                return r

            return record

        def no_max(*args):
            raise NotExpressible(
                "the max over an array's elements is not a SymPy expression "
                "(SymPy's Max(x) of one symbol is x itself)"
            )

        local = dict(syms)
        local.update(
            clip=lambda v, lo, hi: sympy.Min(sympy.Max(v, lo), hi),
            norm=reduction("norm"),
            mean=reduction("mean"),
            max=no_max,
        )
        expr = sympy.parse_expr(case.expr, local_dict=local)
        self.names = tuple(inputs)
        lambdify = sympy.lambdify
        if not reductions:
            symbols = [syms[name] for name in self.names]
            partials = [sympy.diff(expr, s) for s in symbols]
            self.reduction = None
            self.elementwise = lambdify(
                symbols, [expr, *partials], modules=self.MODULES, cse=True
            )
            self.args = [inputs[name] for name in self.names]
            self.text = f"f = {expr}; " + "; ".join(
                f"df/d{n} = {p}" for n, p in zip(self.names, partials, strict=True)
            )
            return
        if len(reductions) != 1 or self.names != ("x",):
            raise NotExpressible("more than one reduction or input")
        kind, inner = reductions[0]
        x = syms["x"]
        self.reduction = kind
        modules = self.MODULES
        self.inner = lambdify([x], [inner, sympy.diff(inner, x)], modules, cse=True)
        self.outer = lambdify([r], [expr, sympy.diff(expr, r)], modules, cse=True)
        self.text = (
            f"r = {kind}(h), h = {inner}, dh/dx = {sympy.diff(inner, x)}; "
            f"F = {expr}, dF/dr = {sympy.diff(expr, r)}"
        )

    def run(self):
        if self.reduction is None:
            value, *partials = self.elementwise(*self.args)
            shape = np.shape(value)
            grads = {}
            for name, partial in zip(self.names, partials, strict=True):
                if name in self.scalars:
                    grads[name] = np.sum(np.broadcast_to(partial, shape))
                else:
                    grads[name] = np.broadcast_to(partial, shape)
            return value, grads
        x = self.inputs["x"]
        h, dh = self.inner(x)
        if self.reduction == "norm":
            r = np.sqrt(np.sum(h * h))
            dr = h * (dh / r)
        else:
            r = np.mean(h)
            dr = np.broadcast_to(dh / np.size(h), np.shape(x))
        value, dvalue = self.outer(r)
        return value, {"x": dvalue * dr}


def make_peer(name: str, case: Case, inputs: dict):
    return {
        "torch": TorchPeer,
        "jax": JaxPeer,
        "autograd": AutogradPeer,
        "lambdify": LambdifyPeer,
    }[name](case, inputs)


# ---------------------------------------------------------------------------
# Agreement and timing.


def _numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().numpy()
    return np.asarray(value, dtype=np.float64)


def compare(result, reference) -> tuple[bool, float, str]:
    """(all agree, worst |diff| / (atol + rtol |ref|) over all arrays, which array)."""
    worst, where = 0.0, ""
    pairs = [("value", result[0], reference[0])]
    pairs += [(f"d/d{k}", result[1][k], g) for k, g in reference[1].items()]
    for label, got, want in pairs:
        got, want = _numpy(got), _numpy(want)
        if got.shape != want.shape:
            return False, math.inf, f"{label}: shape {got.shape} != {want.shape}"
        atol = ATOL_SCALE * float(np.max(np.abs(want), initial=0.0))
        with np.errstate(all="ignore"):
            ratio = np.abs(got - want) / (atol + RTOL * np.abs(want))
        ratio = np.where(got == want, 0.0, ratio)  # inf == inf, and 0/0
        score = float(np.max(ratio, initial=0.0))
        if np.isnan(score) or score > worst:
            worst, where = (math.inf if np.isnan(score) else score), label
    return worst <= 1.0, worst, where


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_ms(
    fns: dict[str, Callable], repeat: int, min_seconds: float, clock: str = "wall"
) -> dict[str, float]:
    """Median milliseconds per call of each function, timed round-robin.

    Each function is warmed up (two calls), then given a `number` of calls per
    repeat such that a repeat lasts at least `min_seconds` (and holds at least 3
    calls); the repeats of the functions are interleaved (a repeat of each in turn,
    `repeat` times), so that a slow spell of a noisy machine hits all of them alike.
    """
    timer = CLOCKS[clock]
    numbers = {}
    for key, fn in fns.items():
        fn()
        fn()
        start = timer()
        fn()
        once = timer() - start
        numbers[key] = max(3, math.ceil(min_seconds / max(once, 1e-6)))
    samples: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            seconds = timeit.Timer(fn, timer=timer).timeit(number=numbers[key])
            samples[key].append(seconds / numbers[key])
    return {key: statistics.median(v) * 1e3 for key, v in samples.items()}


# ---------------------------------------------------------------------------
# The timing table.


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    return f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def run_timing(args) -> None:
    n = args.n
    rows, notes = [], []
    cases = [CASE_BY_KEY[k] for k in args.cases] if args.cases else CASES
    with tempfile.TemporaryDirectory(prefix="symgrad_bench_") as tmp:
        if args.keep_modules:
            tmp = args.keep_modules
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for case in cases:
            inputs = case.inputs(n)
            sg = SymgradPeer(case, inputs, Path(tmp), None if MANY_CORE else 1)
            reference = sg.run()
            fns = {"vg": sg.run, "fwd": sg.run_one_thread if MANY_CORE else sg.forward}
            agree = {}
            for name in PEERS:
                try:
                    peer = make_peer(name, case, inputs)
                except NotExpressible as error:
                    notes.append(f"- {case.expr}: {name} n/a: {error}")
                    continue
                if name == "jax":
                    notes.append(
                        f"- {case.expr}: jax compile {peer.compile_seconds:.2f} s"
                    )
                if name == "lambdify" and args.verbose:
                    notes.append(f"- {case.expr}: lambdify computes {peer.text}")
                ok, worst, where = compare(peer.run(), reference)
                if args.verbose:
                    notes.append(
                        f"- {case.expr}: {name} worst |diff|/(atol + rtol|ref|) "
                        f"= {worst:.3g} at {where or '-'}"
                    )
                if not ok:
                    notes.append(
                        f"- {case.expr}: {name} DISAGREES with symgrad at {where} "
                        f"(max |diff|/(atol + rtol|ref|) = {worst:.3g})"
                    )
                fns[name] = peer.run
                agree[name] = ok
            del reference
            gc.collect()
            ms = median_ms(fns, args.repeat, args.min_time, args.clock)
            times = {"vg": ms["vg"], "fwd": ms["fwd"]}
            cells = {
                name: (ms[name], agree[name]) if name in agree else None
                for name in PEERS
            }
            del fns, sg
            gc.collect()
            rows.append((case, times, cells))
            print(f"  done {case.expr}", file=sys.stderr, flush=True)

    header = (
        "| expression | symgrad v&g ms | symgrad fwd ms | ratio v&g/fwd | torch | jax "
        "| autograd | lambdify | best peer | symgrad / best peer |"
    )
    if MANY_CORE:
        header = header.replace("symgrad v&g ms", "symgrad v&g threads=None ms")
        header = header.replace("symgrad fwd ms", "symgrad v&g 1 thread ms")
        header = header.replace("ratio v&g/fwd", "1 thread / threads=None")
    print(header)
    print("|" + "---|" * 10)
    for case, times, cells in rows:
        shown = []
        for name in PEERS:
            cell = cells[name]
            if cell is None:
                shown.append("n/a")
            else:
                shown.append(_fmt_ms(cell[0]) + ("" if cell[1] else " ✗"))
        agreeing = {k: c[0] for k, c in cells.items() if c is not None and c[1]}
        if agreeing:
            best = min(agreeing, key=agreeing.get)
            best_cell = f"{best} {_fmt_ms(agreeing[best])}"
            versus = f"{times['vg'] / agreeing[best]:.2f}"
        else:
            best_cell, versus = "n/a", "n/a"
        ratio = times["fwd"] / times["vg"] if MANY_CORE else times["vg"] / times["fwd"]
        print(
            f"| `{case.expr}` | {_fmt_ms(times['vg'])} | {_fmt_ms(times['fwd'])} "
            f"| {ratio:.2f} | " + " | ".join(shown) + f" | {best_cell} | {versus} |"
        )
    print()
    print(
        "Times are medians in ms per call; ✗ marks a peer whose value or gradient "
        f"disagreed with symgrad's (rtol {RTOL:g}); best peer is among those that "
        "agreed."
    )
    if notes:
        print()
        print("Notes:")
        print("\n".join(notes))


# ---------------------------------------------------------------------------
# The memory table: each measurement in a fresh subprocess.


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM (peak RSS) to the current RSS; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def memory_child(peer_name: str, key: str, n: int) -> None:
    """Print, as JSON, the peak RSS increase of one value-and-gradient call."""
    case = CASE_BY_KEY[key]
    with tempfile.TemporaryDirectory(prefix="symgrad_bench_") as tmp:
        if peer_name == "symgrad":
            small = SymgradPeer(case, case.inputs(1000), Path(tmp), 1)
        else:
            small = TorchPeer(case, case.inputs(1000))
        small.run()  # warm-up: lazy imports, thread pools, autograd engine
        inputs = case.inputs(n)
        if peer_name == "symgrad":
            peer = SymgradPeer(case, inputs, Path(tmp), 1)
        else:
            peer = TorchPeer(case, inputs)
        del small
        gc.collect()
        before_kib = _status_kib("VmRSS")
        maxrss_before = _maxrss_kib()
        reset = _reset_peak()
        result = peer.run()
        peak_kib = _status_kib("VmHWM") if reset else _maxrss_kib()
        if not reset:
            before_kib = maxrss_before
        outputs = _numpy(result[0]).nbytes + sum(
            _numpy(g).nbytes for g in result[1].values()
        )
        report = {
            "increase_bytes": (peak_kib - before_kib) * 1024,
            "outputs_bytes": outputs,
            "method": "VmHWM" if reset else "ru_maxrss",
        }
        del result
        gc.collect()
        if peer_name == "symgrad":  # NumPy reports its buffers to tracemalloc
            tracemalloc.start()
            result = peer.run()
            report["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del result
    print(json.dumps(report))


def _maxrss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_memory(args) -> None:
    n = args.memory_n
    script = str(Path(__file__).resolve())
    env = dict(os.environ)
    rows = []
    for key in MEMORY_CASES:
        measured = {}
        for peer in ("symgrad", "torch"):
            command = [sys.executable, script, "--memory-child", peer, key, str(n)]
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"{command} failed:\n{done.stderr}")
            measured[peer] = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((CASE_BY_KEY[key], measured))
        print(f"  done memory {key}", file=sys.stderr, flush=True)

    mb = 1e6
    print(
        "| expression | value + grads MB | symgrad peak ΔRSS MB "
        "| symgrad tracemalloc peak MB | torch peak ΔRSS MB | symgrad / torch |"
    )
    print("|" + "---|" * 6)
    methods = set()
    for case, measured in rows:
        sg, th = measured["symgrad"], measured["torch"]
        methods.update((sg["method"], th["method"]))
        print(
            f"| `{case.expr}` | {sg['outputs_bytes'] / mb:.0f} "
            f"| {sg['increase_bytes'] / mb:.0f} "
            f"| {sg['tracemalloc_peak_bytes'] / mb:.0f} "
            f"| {th['increase_bytes'] / mb:.0f} "
            f"| {sg['increase_bytes'] / max(th['increase_bytes'], 1):.2f} |"
        )
    print()
    print(
        f"N = {n:.0e} float64 (one array = {8 * n / mb:.0f} MB); peak resident memory "
        f"above the resident memory before the call ({', '.join(sorted(methods))}), "
        "each in its own subprocess, outputs included."
    )


# ---------------------------------------------------------------------------


def _checkout(root: Path) -> str:
    """' (git abc1234)' for a symgrad run from a git checkout, '+ changes' if dirty."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "symgrad"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" (git {head}{' + uncommitted changes' if dirty else ''})"


def versions() -> str:
    from importlib.metadata import version

    import autograd  # noqa: F401
    import jax
    import jaxlib
    import scipy
    import sympy
    import torch

    import symgrad

    return (
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"symgrad {getattr(symgrad, '__version__', version('symgrad'))}"
        f"{_checkout(Path(symgrad.__file__).resolve().parent.parent)}, "
        f"torch {torch.__version__}, jax {jax.__version__}, "
        f"jaxlib {jaxlib.__version__}, autograd {version('autograd')}, "
        f"sympy {sympy.__version__}, scipy {scipy.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e6, help="inputs per vector")
    parser.add_argument("--repeat", type=int, default=11, help="timeit repeats")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: time.perf_counter; cpu: time.process_time (all threads)",
    )
    parser.add_argument(
        "--min-time", type=float, default=0.05, help="seconds per repeat, at least"
    )
    parser.add_argument("--cases", nargs="*", choices=list(CASE_BY_KEY))
    parser.add_argument("--memory", action="store_true", help="also memory at 1e7")
    parser.add_argument(
        "--many-core",
        action="store_true",
        help="every tool at its default threads; symgrad with threads=None",
    )
    parser.add_argument("--memory-n", type=float, default=MEMORY_N)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument(
        "--verbose", action="store_true", help="print what lambdify computes"
    )
    parser.add_argument(
        "--keep-modules", metavar="DIR", help="write the generated modules here"
    )
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.n = int(args.n)
    args.memory_n = int(args.memory_n)

    try:
        import symgrad  # noqa: F401
    except ImportError:  # run from a checkout without installing
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    if args.memory_child:
        peer, key, n = args.memory_child
        memory_child(peer, key, int(n))
        return

    global MANY_CORE
    MANY_CORE = args.many_core
    # JAX: float64, and one thread like the others (set before jax is imported)
    if not MANY_CORE:
        os.environ.setdefault(
            "XLA_FLAGS",
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        )
    import jax

    jax.config.update("jax_enable_x64", True)

    print(versions())
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
        + (
            "many cores: every tool at its default threads, symgrad threads=None"
            if MANY_CORE
            else f"torch threads 1; XLA_FLAGS={os.environ['XLA_FLAGS']!r}"
        )
    )
    print()
    if not args.memory_only:
        print(
            f"## value and gradient, N = {args.n:.0e} float64, median of "
            f"{args.repeat} interleaved repeats (each >= {args.min_time * 1e3:.0f} ms "
            f"or 3 calls), {args.clock} clock"
        )
        print()
        run_timing(args)
        load = " ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"(load average after timing: {load})")
        print()
    if args.memory or args.memory_only:
        print(f"## peak memory of one value-and-gradient call, N = {args.memory_n:.0e}")
        print()
        run_memory(args)


if __name__ == "__main__":
    main()
