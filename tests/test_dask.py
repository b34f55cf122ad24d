"""Generated modules on other libraries' arrays: Dask (on a real cluster) and CuPy.

A module imports only NumPy; NumPy's dispatch protocols hand each operation to the
array's own library. So a Dask array must go through value_and_grad lazily (nothing
computed when it returns: the local scheduler is replaced by one that fails, and the
results must be Dask arrays), and the graph it returns, computed on a
`dask.distributed.LocalCluster` of two worker processes, must give NumPy's numbers on
the same data:

* bit for bit wherever nothing is summed across chunks: each chunk runs the very
  NumPy ufuncs the NumPy module runs on the whole array (the seeds at every data, the
  random expressions without reductions or broadcasting, on several chunks);
* a sum across chunks adds in another order than NumPy's pairwise sum (per chunk,
  then a tree), so it is exact only where every partial sum is: the reductions run on
  several chunks at data of small powers of two (sums, products and norms exact, the
  same bits); random expressions with a reduction, or whose gradients are summed over
  broadcast axes, run on one chunk per array (the same NumPy calls: the same bits).

One input is larger than all the workers' memory together (out of core): it is
produced and reduced chunk by chunk, and no worker's memory ever exceeds its limit.

CuPy: the same seeds where a GPU is present (skipped with the reason where not).
"""

from __future__ import annotations

import importlib.util
import math
import os
import types
from fractions import Fraction
from pathlib import Path

import dask
import dask.array as da
import expression_strategies as strategies
import numpy as np
import oracle_torch as oracle
import pytest
from dask.distributed import Client, LocalCluster
from hypothesis import HealthCheck, assume, given, note, seed, settings
from hypothesis import strategies as st
from test_fuzz_torch import _generated_module

from symgrad.examples import SEEDS

GENERATED = Path(__file__).resolve().parent.parent / "generated"
WORKER_MEMORY = 192 * 2**20  # bytes, per worker process
EXAMPLES = int(os.environ.get("SYMGRAD_DASK_EXAMPLES") or 40)


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, with a memory limit; not the default
    scheduler of the test process (every compute below names this client)."""
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=WORKER_MEMORY,
            dashboard_address=None,
        )
    with cluster, Client(cluster, set_as_default=False) as connected:
        yield connected


def _refuse(*args, **kwargs):
    raise AssertionError("a Dask array was computed inside the module")


def lazily(function, *args, **kwargs):
    """Call `function` with Dask's schedulers replaced by one that fails."""
    with dask.config.set(scheduler=_refuse):
        return function(*args, **kwargs)


def load(path: Path) -> types.ModuleType:
    """A generated module from its file, not registered in sys.modules (so that the
    workers get its functions by value, as they would from a user's script)."""
    spec = importlib.util.spec_from_file_location(f"seed_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same(got, want, what: str) -> None:
    """Shape, dtype and every bit (nan where nan) equal."""
    got, want = np.asarray(got), np.asarray(want)
    assert (got.shape, got.dtype) == (want.shape, want.dtype), what
    assert np.array_equal(got, want, equal_nan=True), f"{what}: {got!r} vs {want!r}"


def seed_data(names, dyadic: bool) -> list[np.ndarray]:
    """2-D inputs (6 x 4): normal numbers, or small powers of two and zeros (every
    sum, product and norm of them is exact in float64)."""
    rng = np.random.default_rng(9)
    if dyadic:
        choices = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 4.0, -4.0])
        return [rng.choice(choices, size=(6, 4)) for _ in names]
    return [rng.normal(2.0, 2.0, size=(6, 4)) for _ in names]


def run_seed_on_dask(client, module, xs, chunks=(3, 2)):
    arrays = [da.from_array(x, chunks=chunks) for x in xs]
    value, grads = lazily(module.value_and_grad, *arrays)
    assert isinstance(value, da.Array)
    assert all(isinstance(g, da.Array) for g in grads)
    assert [g.chunks for g in grads] == [a.chunks for a in arrays]
    return client.gather(client.compute([value, *grads]))


@pytest.mark.parametrize("name", sorted(SEEDS))
@pytest.mark.parametrize("dyadic", [False, True], ids=["normal", "dyadic"])
def test_seed_modules_on_a_cluster(client, name: str, dyadic: bool) -> None:
    module = load(GENERATED / f"{name}.py")
    xs = seed_data(module.INPUTS, dyadic)
    got = run_seed_on_dask(client, module, xs)
    value, grads = module.value_and_grad(*xs)
    sums = name in ("mean_square", "sin_cos_norm")  # sums across chunks
    if sums and not dyadic:
        # another order of additions: within a few units in the last place of the sum
        np.testing.assert_allclose(got[0], value, rtol=1e-14)
        for g, w in zip(got[1:], grads, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-300)
        return
    assert_same(got[0], value, f"{name} value")
    for i, (g, w) in enumerate(zip(got[1:], grads, strict=True)):
        assert_same(g, w, f"{name} d/d{module.INPUTS[i]}")


# Reductions across chunks, at data where every partial sum and product is exact.
REDUCTIONS = [
    "sum(x*y)",
    "mean((x + 2)*(x + 2)*2)",
    "prod(x)",
    "max(x)",
    "min(x*y)",
    "norm(x)",
    "norm(x, 1)",
    "norm(x, inf)",
    "sin(cos(norm(x)**2 + 1))",
    "x*y + sum(y)",
]


@pytest.mark.parametrize("text", REDUCTIONS)
@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_reductions_across_chunks(client, text: str, zeros: int) -> None:
    """Exact data, so dask's order of additions gives NumPy's bits; prod's gradient
    with no, one and two zeros (its three cases, selected lazily); y broadcast."""
    module = _generated_module(text)
    rng = np.random.default_rng(zeros)
    x = rng.choice(np.array([0.5, -0.5, 1.0, -1.0, 2.0, -2.0]), size=(6, 4))
    x.flat[rng.choice(x.size, size=zeros, replace=False)] = 0.0
    y = rng.choice(np.array([0.5, 1.0, -2.0, 4.0]), size=(6, 1))
    xs = {"x": x, "y": y}
    args = [xs[n] for n in module.INPUTS]
    value, grads = module.value_and_grad(*args)
    arrays = [
        da.from_array(a, chunks=(3, 2) if a.shape[1] > 1 else (2, 1)) for a in args
    ]
    got_value, got_grads = lazily(module.value_and_grad, *arrays)
    assert isinstance(got_value, da.Array)
    assert all(isinstance(g, da.Array) for g in got_grads)
    got = client.gather(client.compute([got_value, *got_grads]))
    assert_same(got[0], value, f"{text} value")
    for name, g, w in zip(module.INPUTS, got[1:], grads, strict=True):
        assert_same(g, w, f"{text} d/d{name}")


def test_logsumexp_across_chunks(client) -> None:
    """exp's results are not exact: dask's order of additions, within a few ulp."""
    module = _generated_module("logsumexp(x)")
    x = np.random.default_rng(3).normal(size=(40, 30))
    value, (grad,) = module.value_and_grad(x)
    got = lazily(module.value_and_grad, da.from_array(x, chunks=(7, 11)))
    got_value, got_grad = client.gather(client.compute([got[0], got[1][0]]))
    np.testing.assert_allclose(got_value, value, rtol=4e-16 * 4)
    np.testing.assert_allclose(got_grad, grad, rtol=1e-14)


def _chunks(array: np.ndarray, split: bool) -> tuple[int, ...] | int:
    """Several chunks per axis (split), or one chunk for the whole array."""
    if not split or array.ndim == 0:
        return -1
    return tuple(max(1, math.ceil(n / 2)) for n in array.shape)


def _sums(module: types.ModuleType, values: dict[str, np.ndarray]) -> bool:
    """Whether the module may add across chunks: a reduction, or a gradient summed
    over axes broadcasting added (inputs of different shapes)."""
    called = set(module.value_and_grad.__code__.co_names)  # np.sum: "sum"
    adding = {"sum", "prod", "_prod_grad", "_norm2", "_logsumexp", "_sum_like"}
    shapes = {v.shape for v in values.values()}
    return bool(adding & called) or len(shapes) > 1


@seed(2)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(text=strategies.expressions(), data=st.data())
def test_random_expressions_on_a_cluster(client, text: str, data) -> None:
    """Random expressions of the whole language (the fuzzer's), at its points
    (special values, float32, empty arrays, broadcasting), some inputs NumPy and some
    Dask: lazy, Dask wherever a Dask array went in, NumPy's bits."""
    module = _generated_module(text)
    values = data.draw(strategies.points(oracle.input_names(text)), label="values")
    names = module.INPUTS
    try:
        with np.errstate(all="ignore"):
            want_value, want_grads = module.value_and_grad(*(values[n] for n in names))
    except (ValueError, ArithmeticError):
        assume(False)  # no value (max of an empty array): nothing to compare
    grad_output = data.draw(
        strategies.grad_outputs(np.shape(want_value), np.asarray(want_value).dtype),
        label="grad_output",
    )
    want_value, want_grads = module.value_and_grad(
        *(values[n] for n in names), grad_output=grad_output
    )
    split = not _sums(module, values)
    on_dask = data.draw(
        st.lists(st.booleans(), min_size=len(names), max_size=len(names)).filter(any),
        label="which inputs are Dask arrays",
    )
    note(f"split into chunks: {split}")
    args = [
        da.from_array(values[n], chunks=_chunks(values[n], split))
        if lazy
        else values[n]
        for n, lazy in zip(names, on_dask, strict=True)
    ]
    value, grads = lazily(module.value_and_grad, *args, grad_output=grad_output)
    for n, lazy, g in zip(names, on_dask, grads, strict=True):
        if lazy:
            assert isinstance(g, da.Array), f"d/d{n} of a Dask input is {type(g)}"
    if all(on_dask):
        assert isinstance(value, da.Array)
    got = client.gather(client.compute([value, *grads]))
    assert_same(got[0], want_value, f"{text!r} value")
    for n, g, w in zip(names, got[1:], want_grads, strict=True):
        assert_same(g, w, f"{text!r} d/d{n}")


def test_python_numbers_and_lists_stay_numpy() -> None:
    module = load(GENERATED / "sum_of_squares.py")
    value, grads = module.value_and_grad(3, [1.0, 2.0])
    assert type(value) is np.ndarray and all(type(g) is np.ndarray for g in grads)
    assert_same(grads[1], np.array([2.0, 4.0]), "d/dy")


def test_an_input_larger_than_the_cluster_memory(client) -> None:
    """mean((x + 2)*(x + 2)*2) of 512 MiB of float64 on two workers of 192 MiB each:
    made, reduced and differentiated chunk by chunk (8 MiB). x = (i mod 17) - 8 holds
    integers and n is a power of two, so every sum, 1/n and every product is exact:
    the value is the exact mean correctly rounded, the gradient exactly 4 (x + 2) / n.
    """
    n = 2**26
    assert 8 * n > 2 * WORKER_MEMORY
    x = (da.arange(n, chunks=2**20) % 17 - 8).astype(np.float64)
    module = load(GENERATED / "mean_square.py")
    before = client.run(os.getpid)
    value, (grad,) = lazily(module.value_and_grad, x)
    assert isinstance(value, da.Array) and isinstance(grad, da.Array)
    wrong = da.count_nonzero(grad != 4 * (x + 2) / n)
    got_value, got_wrong = client.gather(client.compute([value, wrong]))
    # the exact mean: each residue r (x = r - 8) occurs q or q + 1 times
    q, rest = divmod(n, 17)
    exact = sum((q + (r < rest)) * 2 * (r - 6) ** 2 for r in range(17))
    assert float(got_value) == float(Fraction(exact, n))
    assert got_wrong == 0
    # memory bounded: no worker was restarted, none grew past its limit
    assert client.run(os.getpid) == before

    def peak_memory() -> int:
        """The worker's peak resident memory in bytes (Linux's VmHWM: unlike
        getrusage's maxrss it does not carry the parent's peak over exec). Defined
        here, so that it reaches the workers by value, without this test module."""
        status = Path("/proc/self/status").read_text().splitlines()
        return 1024 * int(next(s.split()[1] for s in status if s[:6] == "VmHWM:"))

    peaks = client.run(peak_memory)
    assert max(peaks.values()) < WORKER_MEMORY, peaks


# --- CuPy -----------------------------------------------------------------------------


def _cupy_or_reason():
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed (it needs a CUDA GPU)"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "no CUDA GPU"
    except Exception as exc:  # CUDA driver missing or unusable
        return None, f"no usable CUDA GPU: {exc}"
    return cupy, ""


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_modules_on_cupy(name: str) -> None:
    """The seeds on the GPU: results stay CuPy arrays; numbers within 1e-12 relative
    of NumPy's (CUDA's libm differs from the CPU's in the last bits)."""
    cupy, reason = _cupy_or_reason()
    if cupy is None:
        pytest.skip(reason)
    module = load(GENERATED / f"{name}.py")
    xs = seed_data(module.INPUTS, dyadic=False)
    value, grads = module.value_and_grad(*(cupy.asarray(x) for x in xs))
    assert isinstance(value, cupy.ndarray)
    assert all(isinstance(g, cupy.ndarray) for g in grads)
    want_value, want_grads = module.value_and_grad(*xs)
    np.testing.assert_allclose(cupy.asnumpy(value), want_value, rtol=1e-12)
    for g, w in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(cupy.asnumpy(g), w, rtol=1e-12, atol=1e-300)
