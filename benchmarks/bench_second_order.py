"""Forward mode and second order: symgrad's generated jvp and hvp against PyTorch and
JAX, and the Rosenbrock function's Hessians against SciPy, CasADi-free peers.

Every tool on one thread, medians of repeated runs, in one process:

- jvp at N = 1e6 float64: symgrad's `jvp` (and its `forward`, for the ratio) against
  `torch.func.jvp` and `jax.jit(jax.jvp)`;
- hvp at N = 1e6: symgrad's `hvp` against PyTorch's `torch.autograd.functional.hvp`
  and `jax.jit` of forward-over-reverse (`jax.jvp(jax.grad(...))`);
- the Rosenbrock sum over n = 1,000 scalar inputs: `symgrad generate --order 2`'s
  wall time, and one `hessian_sparse` at a point against SciPy's `rosen_hess`,
  PyTorch's `hessian` and `jax.jit(jax.hessian)`;
- the sliced Rosenbrock at n = 1e6: `value_and_grad` against SciPy's `rosen` +
  `rosen_der`, PyTorch eager and `jax.jit(jax.value_and_grad)`; `hvp` against SciPy's
  `rosen_hess_prod`, PyTorch and JAX.

    python benchmarks/bench_second_order.py [--n 1000000] [--repeat 7]

Peers that are not installed are reported as such.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "cos(x**2)": ("cos(x**2)", lambda m, x: m.cos(x**2)),
    "sin(cos(norm(x)**2+1))": (
        "sin(cos(norm(x)**2 + 1))",
        lambda m, x: m.sin(m.cos(_norm(m, x) ** 2 + 1)),
    ),
    "mean((x+2)*(x+2)*2)": (
        "mean((x + 2)*(x + 2)*2)",
        lambda m, x: m.mean((x + 2) * (x + 2) * 2),
    ),
    "logistic loss": (
        "log1p(exp(-x))",
        lambda m, x: m.log1p(m.exp(-x)),
    ),
}
ROSEN = "sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)"


def _norm(m, x):
    return m.sqrt(m.sum(x * x))


def _median(fn, repeat: int) -> float:
    fn()  # warm up (jit, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _module(text: str, folder: Path, name: str, *extra: str):
    path = folder / f"{name}.py"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "symgrad.cli",
            "generate",
            text,
            "-o",
            str(path),
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None, None
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


def row(label: str, values: dict[str, float | None]) -> str:
    cells = [f"{v:8.2f}" if v is not None else "     n/a" for v in values.values()]
    return f"| {label:<26} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch = _torch()
    jax, jnp = _jax()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, args.n)
    v = rng.normal(size=args.n)
    folder = Path(tempfile.mkdtemp())

    print(f"N = {args.n:g} float64, one thread, median ms of {args.repeat}")
    header = "| case | symgrad forward | symgrad | torch | jax.jit | ratio to forward |"
    for kind in ("jvp", "hvp"):
        print(f"\n{kind}\n{header}\n|---|---|---|---|---|---|")
        for key, (text, fn) in CASES.items():
            m = _module(text, folder, f"m{abs(hash(key))}", "--order", "2")
            forward = _median(lambda m=m: m.forward(x), args.repeat)
            if kind == "jvp":
                ours = _median(lambda m=m: m.jvp((x,), (v,)), args.repeat)
            else:
                ours = _median(lambda m=m: m.hvp((x,), (v,)), args.repeat)
            peer_torch = peer_jax = None
            if torch is not None:
                tx, tv = torch.tensor(x), torch.tensor(v)
                if kind == "jvp":
                    peer_torch = _median(
                        lambda fn=fn, tx=tx, tv=tv: torch.func.jvp(
                            lambda t: fn(torch, t), (tx,), (tv,)
                        ),
                        args.repeat,
                    )
                else:
                    peer_torch = _median(
                        lambda fn=fn, tx=tx, tv=tv: torch.autograd.functional.hvp(
                            lambda t: fn(torch, t).sum(), tx, tv
                        ),
                        args.repeat,
                    )
            if jax is not None:
                jx, jv = jnp.asarray(x), jnp.asarray(v)
                if kind == "jvp":
                    f = jax.jit(
                        lambda a, b, fn=fn: jax.jvp(lambda t: fn(jnp, t), (a,), (b,))
                    )
                else:
                    f = jax.jit(
                        lambda a, b, fn=fn: jax.jvp(
                            jax.grad(lambda t: fn(jnp, t).sum()), (a,), (b,)
                        )
                    )
                peer_jax = _median(
                    lambda f=f, jx=jx, jv=jv: jax.block_until_ready(f(jx, jv)),
                    args.repeat,
                )
            print(
                f"| {key} | {forward:.2f} | {ours:.2f} | "
                + (f"{peer_torch:.2f}" if peer_torch else "n/a")
                + " | "
                + (f"{peer_jax:.2f}" if peer_jax else "n/a")
                + f" | {ours / forward:.2f} |"
            )

    # Rosenbrock over 1,000 scalar inputs: generation and the sparse Hessian.
    from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

    n = 1000
    names = [f"x{i}" for i in range(n)]
    scalar_text = " + ".join(
        f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1)
    )
    path = folder / "rosen_scalar.py"
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
            "--order",
            "2",
            "--inputs",
            ",".join(names),
        ],
        input=scalar_text,
        text=True,
        check=True,
        capture_output=True,
    )
    generate_s = time.perf_counter() - start
    spec = importlib.util.spec_from_file_location("rosen_scalar", path)
    scalar = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scalar)
    point = rng.uniform(-2, 2, n)
    sparse = _median(lambda: scalar.hessian_sparse(*point), args.repeat)
    scipy_hess = _median(lambda: rosen_hess(point), args.repeat)
    print(f"\nRosenbrock, {n} scalar inputs")
    print(f"  symgrad generate --order 2: {generate_s:.2f} s (wall, fresh process)")
    print(f"  HESSIAN_SPARSITY: {len(scalar.HESSIAN_SPARSITY[0])} nonzeros of {n * n}")
    print(f"  symgrad hessian_sparse: {sparse:.2f} ms")
    print(f"  SciPy rosen_hess: {scipy_hess:.2f} ms")
    if torch is not None:
        tp = torch.tensor(point)

        def torch_rosen(t):
            return (100 * (t[1:] - t[:-1] ** 2) ** 2 + (1 - t[:-1]) ** 2).sum()

        hess = _median(lambda: torch.autograd.functional.hessian(torch_rosen, tp), 3)
        print(f"  PyTorch hessian (dense): {hess:.2f} ms")
    if jax is not None:
        jh = jax.jit(
            jax.hessian(
                lambda t: jnp.sum(100 * (t[1:] - t[:-1] ** 2) ** 2 + (1 - t[:-1]) ** 2)
            )
        )
        jp = jnp.asarray(point)
        print(
            "  jax.jit(jax.hessian) (dense): "
            f"{_median(lambda: jax.block_until_ready(jh(jp)), args.repeat):.2f} ms"
        )

    # The sliced Rosenbrock at n = N.
    sliced = _module(ROSEN, folder, "rosen_sliced", "--order", "2")
    xr = rng.uniform(-2, 2, args.n)
    print(f"\nsliced Rosenbrock, n = {args.n:g}")
    vag = _median(lambda: sliced.value_and_grad(xr), args.repeat)
    hvp = _median(lambda: sliced.hvp((xr,), (v,)), args.repeat)
    scipy_vag = _median(lambda: (rosen(xr), rosen_der(xr)), args.repeat)
    scipy_hvp = _median(lambda: rosen_hess_prod(xr, v), args.repeat)
    print(f"  value_and_grad: symgrad {vag:.2f} ms")
    print(f"  value_and_grad: SciPy rosen + rosen_der {scipy_vag:.2f} ms")
    print(f"  hvp: symgrad {hvp:.2f} ms, SciPy rosen_hess_prod {scipy_hvp:.2f} ms")
    if torch is not None:
        tx, tv = torch.tensor(xr), torch.tensor(v)

        def torch_vag():
            t = tx.clone().requires_grad_(True)
            value = (100 * (t[1:] - t[:-1] ** 2) ** 2 + (1 - t[:-1]) ** 2).sum()
            value.backward()
            return value, t.grad

        def torch_rosen(t):
            return (100 * (t[1:] - t[:-1] ** 2) ** 2 + (1 - t[:-1]) ** 2).sum()

        torch_hvp = _median(
            lambda: torch.autograd.functional.hvp(torch_rosen, tx, tv), args.repeat
        )
        print(
            f"  PyTorch eager: value_and_grad {_median(torch_vag, args.repeat):.2f} ms"
        )
        print(f"  PyTorch eager: hvp {torch_hvp:.2f} ms")
    if jax is not None:

        def jrosen(t):
            return jnp.sum(100 * (t[1:] - t[:-1] ** 2) ** 2 + (1 - t[:-1]) ** 2)

        jvag = jax.jit(jax.value_and_grad(jrosen))
        jhvp = jax.jit(lambda a, b: jax.jvp(jax.grad(jrosen), (a,), (b,))[1])
        jx, jv = jnp.asarray(xr), jnp.asarray(v)
        jax_vag = _median(lambda: jax.block_until_ready(jvag(jx)), args.repeat)
        jax_hvp = _median(lambda: jax.block_until_ready(jhvp(jx, jv)), args.repeat)
        print(f"  jax.jit: value_and_grad {jax_vag:.2f} ms, hvp {jax_hvp:.2f} ms")


if __name__ == "__main__":
    main()
