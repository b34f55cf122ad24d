"""Differential fuzzer, second order: random expressions (expression_strategies) with
symgrad's jvp and hvp against PyTorch's forward mode (`torch.func.jvp`) and double
backward on the same string (oracle_torch), at random points with random tangents,
vectors and grad_output. Values where PyTorch gives nan or inf are no reference
(PyTorch's second order at poles and kinks is its own business: see the notes of
`derive --order 2`); elsewhere symgrad must agree to the dtype's tolerance, scaled by
the largest finite magnitude on either side.

    SYMGRAD_FUZZ2_EXAMPLES=300 SYMGRAD_FUZZ_SEED=random python -m pytest \\
        tests/test_fuzz_second_order.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
import random
import warnings

import expression_strategies as strategies
import numpy as np
import oracle_torch as oracle
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

import symgrad
from symgrad.errors import SymgradError
from symgrad.oracles import mpmath_hessian

_SEED_TEXT = os.environ.get("SYMGRAD_FUZZ_SEED") or "1"
SEED = (
    random.SystemRandom().randrange(2**32)
    if _SEED_TEXT == "random"
    else int(_SEED_TEXT)
)
EXAMPLES = int(os.environ.get("SYMGRAD_FUZZ2_EXAMPLES") or 200)
RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-3}


def _problems(what: str, got, want, dtype, terms: float = 0.0) -> list[str]:
    """`terms`: the largest magnitude among the terms summed into the result, so
    that a cancellation is judged against the size of what cancelled."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return [f"{what}: shape {got.shape}, want {want.shape}"]
    known = np.isfinite(want)
    if not known.any():
        return []
    rtol = RTOL.get(np.dtype(dtype), 1e-2)
    scale = max(1.0, terms, float(np.abs(want[known]).max()))
    g, w = got[known], want[known]
    finite = np.isfinite(g)
    bad = ~finite | (np.abs(g - w) > rtol * scale + rtol * np.abs(w))
    # a finite reference whose neighbours overflow: huge magnitudes are no reference
    bad &= np.abs(w) < 1e25  # PyTorch's finite stand-ins for poles (polygamma)
    if bad.any():
        return [f"{what}: {g[bad].tolist()}, want {w[bad].tolist()}"]
    return []


@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(text=strategies.expressions(), data=st.data())
def test_jvp_and_hvp_match_pytorch(text: str, data: st.DataObject) -> None:
    note(f"SYMGRAD_FUZZ_SEED={SEED}")
    names = oracle.input_names(text)
    values = data.draw(strategies.points(names), label="values")
    try:
        shape_of = oracle.value(text, values)
    except oracle.OracleUndefined:
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="rng"))
    tangents = {
        n: rng.normal(size=np.shape(values[n])).astype(np.asarray(values[n]).dtype)
        for n in names
    }
    grad_output = rng.normal(size=shape_of.shape).astype(shape_of.dtype)
    function = symgrad.derive(text, inputs=names).function
    primals = [np.array(values[n], copy=True) for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            _, tangent = function.jvp(primals, [tangents[n] for n in names])
            _, products = function.hvp(
                primals, [tangents[n] for n in names], grad_output
            )
        except SymgradError:
            return  # a clear error (an empty max, say) is a fine answer
    want_value, want_tangent = oracle.jvp(text, values, tangents)
    # the tangent of a nan value is anyone's (PyTorch's max(x, nan) has x's tangent
    # in backward mode and the nan side's in forward mode)
    want_tangent = np.where(np.isnan(want_value), np.nan, want_tangent)
    want_products = oracle.hvp(text, values, tangents, grad_output)
    # where the gradient itself is not finite (for any input: a nan partial meets
    # a zero component of the vector in the cross terms), its slope is no reference
    first = oracle.value_and_grad(text, values, grad_output).grads
    if not all(np.isfinite(first[n]).all() for n in names):
        want_products = {
            n: np.full(np.shape(p), np.nan) for n, p in want_products.items()
        }
    if grad_output is not None:  # where PyTorch's two second orders disagree, no
        # reference (x**y at y = 0: its double backward is not symmetric)
        try:
            other = oracle.hvp_forward_over_reverse(
                text, values, {n: t for n, t in tangents.items()}
            )
            ones = oracle.hvp(text, values, tangents, None)
        except Exception:  # noqa: BLE001 - torch.func cannot trace it: no filter
            other = ones = None
        if other is not None and ones is not None:
            for n in names:
                same = np.isclose(
                    ones[n], other[n], rtol=1e-9, atol=1e-12, equal_nan=True
                )
                want_products[n] = np.where(same, want_products[n], np.nan)
    note(f"jvp {tangent!r} vs {want_tangent!r}; hvp {products!r} vs {want_products!r}")
    problems = _problems("jvp", tangent, want_tangent, shape_of.dtype)
    terms = _hvp_terms(function, names, primals, tangents, grad_output)
    hvp_problems: list[str] = []
    for n, p in zip(names, products, strict=True):
        hvp_problems += _problems(
            f"hvp d/d{n}", p, want_products[n], shape_of.dtype, terms
        )
    if hvp_problems and _mpmath_agrees(
        text, names, values, tangents, grad_output, products
    ):
        note(f"PyTorch's double backward is wrong here (mpmath): {hvp_problems}")
        hvp_problems = []  # x**y at y = 0: PyTorch's where halves the Hessian
    problems += hvp_problems
    assert not problems, f"{text!r}: " + "; ".join(problems)


def _mpmath_agrees(text, names, values, tangents, grad_output, products) -> bool:
    """Whether mpmath's Hessian (scalar points only) times the vectors is symgrad's
    hvp: the third opinion where symgrad and PyTorch differ."""
    if not all(np.size(values[n]) == 1 for n in names) or np.size(grad_output) != 1:
        return False
    if any(np.asarray(values[n]).dtype != np.float64 for n in names):
        return False
    point = [float(np.ravel(values[n])[0]) for n in names]
    try:
        exact = np.array(mpmath_hessian(text, names, point))
    except Exception:  # noqa: BLE001 - no mpmath reference: no third opinion
        return False
    vector = np.array([float(np.ravel(tangents[n])[0]) for n in names])
    want = float(np.ravel(grad_output)[0]) * (exact @ vector)
    got = np.array([float(np.ravel(p)[0]) for p in products])
    return bool(
        np.all(np.isfinite(want)) and np.allclose(got, want, rtol=1e-7, atol=1e-9)
    )


def _hvp_terms(function, names, primals, tangents, grad_output) -> float:
    """The largest finite magnitude among the tangent nodes the hvp sums (symgrad's
    own intermediates: their rounding bounds the result's)."""
    from symgrad import evaluate
    from symgrad.graph import ancestors

    program = function.program
    outs = [o for o in program.hvp_outputs.values() if o is not None]
    if not outs:
        return 0.0
    bound = program.bindings(
        dict(zip(names, primals, strict=True)), grad_output, tangents=tangents
    )
    nodes = ancestors(outs)
    backward = {n.id for n in ancestors(list(program.backward.adjoints.values()))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = evaluate.run(nodes, bound)
        sizes = [
            np.abs(np.asarray(values[n.id], dtype=np.float64))
            for n in nodes
            if n.id not in backward and n.op not in ("input", "const", "dtype")
        ]
        finite = [float(v[np.isfinite(v)].max()) for v in sizes if np.isfinite(v).any()]
    return max(finite, default=0.0)
