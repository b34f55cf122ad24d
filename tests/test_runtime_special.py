"""Tests of symgrad/runtime/special.py: accuracy, PyTorch's special values, the I/O
contract (shapes, dtypes, no warnings) and the self-containment its copying needs."""

import ast
import builtins
import math
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import mpmath as mp
import numpy as np
import pytest
import torch

from symgrad.runtime import HELPERS
from symgrad.runtime import special as special_module

# the helpers by their bare names (special.erf is _erf)
special = SimpleNamespace(**{name[1:]: f for name, f in HELPERS.items()})

PUBLIC = ("erf", "erfc", "erfinv", "lgamma", "digamma", "trigamma")
SOURCE_PATH = Path(special_module.__file__)

TOL = 1e-14  # the accuracy bound stated in the module docstring
TINY = 2.2250738585072014e-308  # smallest normal double
HUGE = 1.7976931348623157e308  # largest double

# --- references: mpmath at 50 digits --------------------------------------------------


def _ref_lgamma(x):
    return mp.loggamma(x) if x > 0 else mp.re(mp.loggamma(x))  # log|Gamma(x)|


def _ref_digamma(x):
    return mp.digamma(x) if x > 0 else mp.digamma(1 - x) - mp.pi * mp.cot(mp.pi * x)


def _ref_trigamma(x):
    # mpmath's psi(1, x) is very slow for large negative x: use the reflection there.
    if x > 0:
        return mp.psi(1, x)
    return mp.pi**2 / mp.sin(mp.pi * x) ** 2 - mp.psi(1, 1 - x)


REFERENCE = {
    "erf": mp.erf,
    "erfc": mp.erfc,
    "erfinv": mp.erfinv,
    "lgamma": _ref_lgamma,
    "digamma": _ref_digamma,
    "trigamma": _ref_trigamma,
}


def _scale(name, x, ref):
    """The denominator of the error criterion of the module docstring."""
    scale = max(abs(ref), TINY)  # subnormal results: absolute error vs. TINY
    if x < 0 and name == "lgamma":
        scale = max(scale, 1)
    if x < 0 and name == "digamma":
        scale = max(scale, 1, math.log(-x) / 8)
    return scale


def _worst_error(name, xs):
    """Largest scaled error of special.<name> over the float64 points xs, and where."""
    xs = np.asarray(xs, dtype=np.float64)
    ours = getattr(special, name)(xs)
    worst, where = 0.0, None
    with mp.workdps(50):
        for x, y in zip(xs.tolist(), ours.tolist(), strict=True):
            ref = REFERENCE[name](mp.mpf(x))
            if not math.isfinite(y):
                # Only overflow may give inf, with the right sign.
                ok = abs(ref) > HUGE and math.copysign(1, y) == mp.sign(ref)
                err = 0.0 if ok else math.inf
            else:
                err = float(abs(mp.mpf(y) - ref) / _scale(name, x, ref))
            if err > worst:
                worst, where = err, x
    return worst, where


RNG = np.random.default_rng(20240611)


def _loguniform(lo, hi, n):
    return np.exp(RNG.uniform(math.log(lo), math.log(hi), n))


def _signed(xs):
    return xs * RNG.choice([-1.0, 1.0], len(xs))


def _not_integers(xs):
    return xs[xs != np.rint(xs)]


def _near(points, n, lo=1e-16, hi=0.05):
    """n points at distances log-uniform in [lo, hi] on both sides of each point."""
    d = _loguniform(lo, hi, n * len(points)) * RNG.choice([-1.0, 1.0], n * len(points))
    return np.repeat(np.asarray(points, dtype=np.float64), n) + d


def _digamma_negative_zeros(n):
    """Points near the zero of digamma in (-m, -m + 1) for m up to 4e15."""
    m = np.floor(_loguniform(2, 4e15, n))
    d = np.arctan(np.pi / np.log(m + 1)) / np.pi * (1 + RNG.uniform(-0.02, 0.02, n))
    return -m + d


LGAMMA_NEGATIVE_ZEROS = (
    -2.4570247382208006,
    -2.7476826467274127,
    -3.14358088834998,
    -3.955294284858598,
    -4.039361839740537,
    -4.991544640560048,
    -5.0082181683225935,
    -5.998607480080875,
    -6.001385294453155,
)
DIGAMMA_POSITIVE_ZERO = 1.4616321449683622
POLES = (-1, -2, -7, -30)

CASES = [
    ("erf", "grid", np.linspace(-7, 7, 11201)),
    ("erf", "tiny..7", _signed(_loguniform(1e-300, 7, 6000))),
    ("erf", "branch points", _near([-6, -1, 1, 6], 400, hi=1e-3)),
    ("erfc", "grid", np.linspace(-7, 27.5, 13801)),
    ("erfc", "tiny..1", _signed(_loguniform(1e-300, 1, 3200))),
    ("erfc", "tail 20..27.3", RNG.uniform(20, 27.3, 3200)),
    ("erfc", "branch points", _near([-6, -1, 1], 400, hi=1e-3)),
    ("erfinv", "grid", np.linspace(-1, 1, 4001)[1:-1]),
    ("erfinv", "tiny..0.5", _signed(_loguniform(1e-300, 0.5, 2000))),
    ("erfinv", "near +-1", _signed(1 - _loguniform(1.1e-16, 0.5, 2400))),
    ("erfinv", "branch point", _near([0.5], 400, hi=1e-3)),
    ("lgamma", "1e-300..1e300", _loguniform(1e-300, 1e300, 6000)),
    ("lgamma", "grid 0..12", np.linspace(0, 12, 9601)[1:]),
    ("lgamma", "zeros 1, 2", _near([1, 2], 800)),
    ("lgamma", "branch points", _near([0.5, 1.5, 2.5], 400, hi=1e-3)),
    ("lgamma", "grid -20..0", _not_integers(np.linspace(-20, 0, 8009))),
    ("lgamma", "-1e15..-1e-300", _not_integers(-_loguniform(1e-300, 1e15, 4000))),
    ("lgamma", "negative zeros", _near(LGAMMA_NEGATIVE_ZEROS, 120, hi=1e-2)),
    ("lgamma", "near poles", _not_integers(_near(POLES, 200, 1e-15, 1e-2))),
    ("digamma", "1e-300..1e300", _loguniform(1e-300, 1e300, 6000)),
    ("digamma", "grid 0..12", np.linspace(0, 12, 9601)[1:]),
    ("digamma", "zero 1.46", _near([DIGAMMA_POSITIVE_ZERO], 1200)),
    ("digamma", "branch points", _near([1, 2], 400, hi=1e-3)),
    ("digamma", "grid -20..0", _not_integers(np.linspace(-20, 0, 8009))),
    ("digamma", "-4e15..-1e-300", _not_integers(-_loguniform(1e-300, 4e15, 4000))),
    ("digamma", "negative zeros", _not_integers(_digamma_negative_zeros(6000))),
    ("digamma", "near poles", _not_integers(_near(POLES, 200, 1e-15, 1e-2))),
    ("trigamma", "1e-150..1e300", _loguniform(1e-150, 1e300, 4000)),
    ("trigamma", "grid 0..12", np.linspace(0, 12, 4801)[1:]),
    ("trigamma", "branch points", _near([1, 2], 200, hi=1e-3)),
    ("trigamma", "grid -20..0", _not_integers(np.linspace(-20, 0, 4009))),
    ("trigamma", "-1e15..-1e-150", _not_integers(-_loguniform(1e-150, 1e15, 2400))),
]


@pytest.mark.parametrize(
    ("name", "xs"), [(c[0], c[2]) for c in CASES], ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_accuracy_against_mpmath(name, xs):
    worst, where = _worst_error(name, xs)
    assert worst <= TOL, f"{name}: error {worst:.3g} (criterion) at x = {where!r}"


@pytest.mark.parametrize(
    ("name", "x"),
    [
        ("erfc", 26.0),  # 5.6e-296
        ("erfc", 26.5),
        ("erfc", 26.55),  # 2.3e-308, the last normal result
        ("erfc", 27.0),  # subnormal
        ("erfinv", 1 - 2**-53),  # the largest double below 1
        ("erfinv", 1 - 1e-15),
        ("erfinv", -(1 - 1e-15)),
        ("erfinv", 1e-300),
        ("erfinv", 5e-324),
        ("lgamma", np.nextafter(1, 0)),
        ("lgamma", np.nextafter(2, 3)),
        ("lgamma", 1e300),
        ("lgamma", 5e-324),
        ("lgamma", -1e-300),
        ("digamma", DIGAMMA_POSITIVE_ZERO),
        ("digamma", np.nextafter(DIGAMMA_POSITIVE_ZERO, 2)),
        ("digamma", 1e-300),
        ("digamma", -0.5),  # psi(1.5) exactly, the cotangent vanishes
        ("trigamma", 1e-154),
        ("trigamma", 1e300),
        ("trigamma", -0.5),
    ],
)
def test_accuracy_at_hard_points(name, x):
    worst, _ = _worst_error(name, [x])
    assert worst <= TOL, f"{name}({x!r}): error {worst:.3g}"


def test_erfc_is_zero_where_it_underflows():
    assert np.all(special.erfc(np.array([27.3, 30.0, 1e3, 1e308])) == 0)


# --- special values: PyTorch's --------------------------------------------------------

INF, NAN = math.inf, math.nan
EXTREMES = [
    -INF,
    -1e308,
    -1e20,
    -30.0,
    -6.0,
    -3.0,
    -2.0,
    -1.0,
    -0.5,
    -1e-300,
    -0.0,
    0.0,
    5e-324,
    1e-300,
    0.5,
    1 - 1e-16,
    1.0,
    1 + 2e-16,
    2.0,
    6.0,
    27.3,
    30.0,
    1e20,
    1e308,
    INF,
    NAN,
]
ERFINV_EXTREMES = [-INF, -2.0, -1.0, -1 + 2**-24, -0.5, -0.0, 0.0, 5e-324, 0.5]
ERFINV_EXTREMES += [1 - 2**-24, 1.0, 1.5, INF, NAN]
TORCH = {
    "erf": torch.erf,
    "erfc": torch.erfc,
    "erfinv": torch.erfinv,
    "lgamma": torch.lgamma,
    "digamma": torch.digamma,
    "trigamma": lambda t: torch.polygamma(1, t),
}


def _same(ours, theirs, rtol):
    """Equal as special values go: both nan, or the same inf or signed zero, or else
    within rtol (PyTorch's own accuracy)."""
    if math.isnan(theirs):
        return math.isnan(ours)
    if math.isinf(theirs) or theirs == 0:
        return ours == theirs and math.copysign(1, ours) == math.copysign(1, theirs)
    return abs(ours - theirs) <= rtol * abs(theirs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", PUBLIC)
def test_special_values_match_torch(name, dtype):
    xs = _cast(ERFINV_EXTREMES if name == "erfinv" else EXTREMES, dtype)
    ours = getattr(special, name)(xs)
    theirs = TORCH[name](torch.from_numpy(xs)).numpy()
    assert ours.dtype == theirs.dtype
    if name == "trigamma":
        # Deliberate difference: at the negative integers trigamma has a pole and we
        # return inf. PyTorch evaluates its reflection formula there as it is, which
        # gives an arbitrary finite number (pi**2 / sin(pi x)**2 with the rounding
        # error of pi * x for sin(pi x)), or nan at -1e308 where pi * x overflows.
        poles = (xs < 0) & (xs == np.rint(xs)) & np.isfinite(xs)
        assert np.all(ours[poles] == INF)
        xs, ours, theirs = xs[~poles], ours[~poles], theirs[~poles]
    rtol = 1e-9 if dtype is np.float64 else 1e-5  # PyTorch's float32 kernels
    triples = zip(xs.tolist(), ours.tolist(), theirs.tolist(), strict=True)
    bad = [(x, o, t) for x, o, t in triples if not _same(o, t, rtol)]
    assert not bad, f"{name}: (x, ours, torch) differ: {bad}"


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        ("erf", INF, 1.0),
        ("erf", -INF, -1.0),
        ("erf", -0.0, -0.0),
        ("erfc", -INF, 2.0),
        ("erfc", INF, 0.0),
        ("erfinv", 1.0, INF),
        ("erfinv", -1.0, -INF),
        ("erfinv", 1.5, NAN),
        ("erfinv", -0.0, -0.0),
        ("lgamma", 0.0, INF),
        ("lgamma", -0.0, INF),
        ("lgamma", -3.0, INF),
        ("lgamma", -INF, INF),
        ("lgamma", INF, INF),
        ("lgamma", 1.0, 0.0),
        ("lgamma", 2.0, 0.0),
        ("digamma", 0.0, -INF),
        ("digamma", -0.0, INF),
        ("digamma", -3.0, NAN),
        ("digamma", -INF, NAN),
        ("digamma", INF, INF),
        ("trigamma", 0.0, INF),
        ("trigamma", -3.0, INF),
        ("trigamma", -INF, NAN),
        ("trigamma", INF, 0.0),
    ],
)
def test_special_values(name, x, expected):
    got = float(getattr(special, name)(x))
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


@pytest.mark.parametrize("name", PUBLIC)
def test_nan_gives_nan(name):
    assert np.all(np.isnan(getattr(special, name)(np.array([NAN, -NAN]))))


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("erf", -6, 6),
        ("erfc", -6, 26),
        ("erfinv", -0.999, 0.999),
        ("lgamma", 0.01, 50),
        ("lgamma", -20, 0),
        ("digamma", 0.01, 50),
        ("digamma", -20, 0),
        ("trigamma", 0.01, 50),
        ("trigamma", -20, 0),
    ],
)
def test_agrees_with_torch_on_ordinary_inputs(name, lo, hi):
    """Same conventions as PyTorch (e.g. lgamma = log|Gamma|), within its accuracy."""
    xs = _not_integers(np.random.default_rng(1).uniform(lo, hi, 20000))
    ours = getattr(special, name)(xs)
    theirs = TORCH[name](torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10)


# --- interface: shapes, dtypes, warnings ----------------------------------------------


@pytest.mark.parametrize("name", PUBLIC)
def test_shapes_and_dtypes(name):
    f = getattr(special, name)
    x = 0.25
    expected = float(f(np.array([x]))[0])

    for value in (x, np.float64(x), np.array(x)):
        out = f(value)
        assert isinstance(out, np.ndarray) and out.shape == ()
        assert out.dtype == np.float64 and float(out) == expected

    out = f(np.float32(x))
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float32
    assert out == np.float32(expected)

    out = f(np.full((2, 3, 4), x, dtype=np.float32))
    assert out.shape == (2, 3, 4) and out.dtype == np.float32
    assert np.all(out == np.float32(expected))

    value = np.full(5, x)  # float64: the functions see (a view of) this very array
    out = f(value)
    assert np.all(value == x) and np.all(out == expected) and out is not value

    for value in ([x, x], [[x], [x]], (x,)):
        out = f(value)
        assert out.shape == np.shape(value) and out.dtype == np.float64

    # Integers and other non-float inputs are computed and returned in float64.
    for value in (1, [1, 2], np.array([1, 2], dtype=np.int32), True):
        out = f(value)
        assert out.dtype == np.float64 and out.shape == np.shape(value)
    # float16 in, float16 out (computed in float64)
    out = f(np.float16(x))
    assert out.dtype == np.float16 and out == np.float16(expected)
    assert float(f(1)) == float(f(1.0))

    for shape in ((0,), (3, 0)):
        out = f(np.empty(shape))
        assert out.shape == shape and out.dtype == np.float64


@pytest.mark.parametrize("name", PUBLIC)
def test_large_and_strided_arrays(name):
    """Blocks of the array (65536 elements each) are processed independently; the
    input is left untouched; strided and multi-dimensional views work."""
    f = getattr(special, name)
    rng = np.random.default_rng(2)
    lo, hi = (-0.99, 0.99) if name == "erfinv" else (-8.0, 8.0)
    x = rng.uniform(lo, hi, 3 * 65536 + 17)
    x[::7] = rng.choice([-INF, NAN, 0.0, -3.0, hi], x[::7].size)  # special values too
    keep = x.copy()
    out = f(x)
    np.testing.assert_array_equal(x, keep)
    idx = rng.choice(x.size, 300)
    np.testing.assert_array_equal(out[idx], [f(v) for v in x[idx]])
    strided = x[1::3]
    np.testing.assert_array_equal(f(strided), out[1::3])
    square = x[: 200 * 300].reshape(200, 300).T
    np.testing.assert_array_equal(f(square), out[: 200 * 300].reshape(200, 300).T)


EXTREME_INPUTS = EXTREMES + [
    -1e-308,
    1e-308,
    -5e-324,
    1 - 2**-53,
    -(1 - 2**-53),
    1e-16,
    -1e-16,
    1e16,
    -1e16,
    2.0**52 + 0.5,
    -(2.0**51) - 0.5,
    3e38,
    -3e38,
    1e-45,
    26.6,
    27.2,
    -27.3,
    709.8,
    -709.8,
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", PUBLIC)
def test_no_warnings_on_extreme_inputs(name, dtype):
    f = getattr(special, name)
    xs = _cast(EXTREME_INPUTS, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(xs)  # in NumPy's default error state, where warnings are now errors
        for x in xs:
            f(x)
        f(xs.tolist())
        with np.errstate(all="raise"):
            f(xs)


def _cast(values, dtype):
    """values as an array of dtype (1e308 becomes inf in float32, silently)."""
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype)


# --- the copying contract -------------------------------------------------------------


def _module_tree():
    return ast.parse(SOURCE_PATH.read_text(encoding="utf-8"))


def _top_level_defs():
    return {n.name: n for n in _module_tree().body if isinstance(n, ast.FunctionDef)}


def test_module_has_only_imports_and_defs():
    tree = _module_tree()
    body = tree.body
    assert ast.get_docstring(tree), "the module docstring states the contract"
    imports = [ast.dump(n) for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert sorted(imports) == sorted(
        ast.dump(ast.parse(s).body[0]) for s in ("import math", "import numpy as np")
    )
    for node in body[1:]:
        assert isinstance(node, ast.Import | ast.FunctionDef), (
            f"line {node.lineno}: only imports and defs at module level"
        )
    assert {"_" + n for n in PUBLIC} <= set(_top_level_defs())


def _bound_names(node):
    """Every name a def binds anywhere inside it (arguments, assignments, loop and
    comprehension variables, nested defs and lambdas)."""
    bound = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            bound.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            bound.add(sub.id)
        elif isinstance(sub, ast.FunctionDef) and sub is not node:
            bound.add(sub.name)
    return bound


@pytest.mark.parametrize("name", sorted(_top_level_defs()))
def test_helper_is_self_contained(name):
    defs = _top_level_defs()
    node = defs[name]
    allowed = set(dir(builtins)) | {"np", "math"} | _bound_names(node) | set(defs)
    loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    assert loaded <= allowed, f"{name} uses outside names {sorted(loaded - allowed)}"
    forbidden = ast.Global | ast.Nonlocal | ast.Import | ast.ImportFrom
    assert not any(isinstance(sub, forbidden) for sub in ast.walk(node))


@pytest.mark.parametrize("name", sorted(_top_level_defs()))
def test_helpers_are_found_by_scanning_for_calls(name):
    """The generator finds the helpers a helper needs by scanning its source for
    `_name(`: every use of a helper must be such a direct call, names are `_` and a
    lowercase letter, and comments and docstrings must not mention a helper followed
    by "(" (that would copy it needlessly)."""
    defs = _top_level_defs()
    assert re.fullmatch(r"_[a-z][a-z0-9_]*", name)
    node = defs[name]
    called = _called_helpers(node, defs)
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defs}
    assert used == called, f"{name} uses helpers other than by calling them"
    source = ast.get_source_segment(SOURCE_PATH.read_text(encoding="utf-8"), node)
    scanned = set(re.findall(r"(?<![\w.])(_[a-z][a-z0-9_]*)\(", source)) & set(defs)
    assert scanned - {name} == called - {name}


def _called_helpers(node, defs):
    """The top-level defs that `node` calls by name."""
    return {
        n.func.id
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in defs
    }


def _closure(name, defs):
    """`name` and every helper it needs, directly or not."""
    todo, seen = [name], set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(_called_helpers(defs[current], defs))
    return seen


@pytest.mark.parametrize("name", PUBLIC)
def test_copied_source_runs_alone(name):
    """What the generator does: the function's source and its helpers', run in a
    namespace holding nothing but np and math, give the same results."""
    source = SOURCE_PATH.read_text(encoding="utf-8")
    defs = _top_level_defs()
    namespace = {"np": np, "math": math}
    for helper in sorted(_closure("_" + name, defs)):
        exec(ast.get_source_segment(source, defs[helper]), namespace)
    xs = np.array([-INF, -2.5, -0.7, -0.0, 1e-300, 0.3, 0.9, 1.7, 4.0, 30.0, INF, NAN])
    np.testing.assert_array_equal(namespace["_" + name](xs), getattr(special, name)(xs))


@pytest.mark.parametrize("name", PUBLIC)
def test_generator_copies_work(name):
    """The same through the generator itself: helpers copied verbatim."""
    from symgrad.runtime import source as helper_sources

    namespace = {"np": np, "math": math}
    for source in helper_sources(("_" + name,)):
        exec(source, namespace)
    xs = np.array([-INF, -2.5, -0.7, -0.0, 1e-300, 0.3, 0.9, 1.7, 4.0, 30.0, INF, NAN])
    np.testing.assert_array_equal(namespace["_" + name](xs), getattr(special, name)(xs))


def test_helper_names_are_unique_among_runtime_files():
    """The generator looks helpers up by name in all of symgrad/runtime/*.py."""
    ours = set(_top_level_defs())
    for path in SOURCE_PATH.parent.glob("*.py"):
        if path != SOURCE_PATH:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            theirs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            assert not ours & theirs, f"{path.name} also defines {ours & theirs}"
