"""Oracles that symgrad did not write: PyTorch autograd, mpmath, finite differences.

`symgrad check` and the tests compare the generated code with these. PyTorch is imported
only when asked for (it is an optional, test-time dependency); mpmath comes with SymPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from symgrad import functions as F
from symgrad import registry


def torch_value_and_grad(
    expr: sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    grad_output: Any = None,
    dtype: str = "float64",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Value and gradients of `expr` computed by PyTorch autograd (the reference).

    The expression is evaluated with each registry row's PyTorch reference; masks become
    numbers (true = 1), as in symgrad's language. A comparison's output carries no
    gradient in PyTorch: those gradients are returned as zeros.
    """
    import torch

    tdtype = getattr(torch, dtype)
    leaves = {
        n: torch.tensor(np.asarray(values[n]), dtype=tdtype, requires_grad=True)
        for n in inputs
    }
    cache: dict[sp.Expr, Any] = {}

    def ev(e: sp.Expr) -> Any:
        if e in cache:
            return cache[e]
        if e.is_Symbol:
            result = leaves[e.name]
        elif F.is_literal(e):
            result = torch.tensor(float(e.evalf(30)), dtype=tdtype)
        elif isinstance(e, sp.Add):
            result = ev(e.args[0])
            for a in e.args[1:]:
                result = result + ev(a)
        elif isinstance(e, sp.Mul):
            num = [a for a in e.args if not (a.is_Pow and a.exp == -1)]
            den = [a.base for a in e.args if a.is_Pow and a.exp == -1]
            result = ev(num[0]) if num else torch.tensor(1.0, dtype=tdtype)
            for a in num[1:]:
                result = result * ev(a)
            for a in den:
                result = result / ev(a)
        elif isinstance(e, sp.Pow):
            base, exponent = e.args
            if exponent == sp.S.Half:
                result = torch.sqrt(ev(base))
            elif exponent.is_Number:
                result = torch.pow(ev(base), float(exponent))
            else:
                result = torch.pow(ev(base), ev(exponent))
        else:
            rule = registry.rule_for(e)
            args = [ev(a) for a in e.args]
            if e.func is F.where:
                args[0] = args[0].to(tdtype)
            result = rule.torch(torch, *args)
            if result.dtype == torch.bool:
                result = result.to(tdtype)
        cache[e] = result
        return result

    value = ev(expr)
    if not torch.is_tensor(value):
        value = torch.tensor(value, dtype=tdtype)
    grads: list[np.ndarray] = []
    if value.requires_grad:
        seed = (
            torch.ones_like(value)
            if grad_output is None
            else torch.tensor(np.asarray(grad_output), dtype=tdtype)
        )
        got = torch.autograd.grad(
            value, [leaves[n] for n in inputs], seed, allow_unused=True
        )
        for n, g in zip(inputs, got, strict=True):
            grads.append(
                np.zeros(leaves[n].shape, dtype=dtype)
                if g is None
                else g.detach().numpy()
            )
    else:
        grads = [np.zeros(leaves[n].shape, dtype=dtype) for n in inputs]
    return value.detach().numpy(), grads


# mpmath implementations of symgrad's own functions (SymPy's own lambdify to mpmath).
def _mpmath_table() -> dict[str, Any]:
    import mpmath as mp

    def sgn(v: Any) -> Any:
        return mp.sign(v)

    return {
        "exp2": lambda v: mp.power(2, v),
        "expm1": mp.expm1,
        "log2": lambda v: mp.log(v, 2),
        "log10": mp.log10,
        "log1p": mp.log1p,
        "sigmoid": lambda v: 1 / (1 + mp.exp(-v)),
        "softplus": lambda v: v if v > 20 else mp.log1p(mp.exp(v)),
        "relu": lambda v: max(v, 0),
        "silu": lambda v: v / (1 + mp.exp(-v)),
        "round_": lambda v: mp.nint(v),
        "hypot": mp.hypot,
        "clip": lambda v, lo, hi: min(max(v, lo), hi),
        "maximum": max,
        "minimum": min,
        "where": lambda c, a, b: a if c != 0 else b,
        "lt": lambda a, b: int(a < b),
        "le": lambda a, b: int(a <= b),
        "gt": lambda a, b: int(a > b),
        "ge": lambda a, b: int(a >= b),
        "eq": lambda a, b: int(a == b),
        "ne": lambda a, b: int(a != b),
        "logical_and": lambda a, b: int(a != 0 and b != 0),
        "logical_or": lambda a, b: int(a != 0 or b != 0),
        "logical_not": lambda a: int(a == 0),
        # Reductions of a scalar (mpmath checks run on scalar inputs).
        "sum_": lambda v: v,
        "mean": lambda v: v,
        "prod": lambda v: v,
        "amax": lambda v: v,
        "amin": lambda v: v,
        "norm": abs,
        "norm1": abs,
        "norminf": abs,
        "logsumexp": lambda v: v,
        "size": lambda v: 1,
        "sign": sgn,
        "erfinv": mp.erfinv if hasattr(mp, "erfinv") else None,
    }


def mpmath_function(expr: sp.Expr, inputs: Sequence[str]) -> Any:
    """`expr` as an mpmath function of scalar inputs (for high-precision references)."""
    symbols = [sp.Symbol(n, real=True) for n in inputs]
    table = {k: v for k, v in _mpmath_table().items() if v is not None}
    return sp.lambdify(symbols, expr, modules=[table, "mpmath"])


def mpmath_gradient(
    expr: sp.Expr, inputs: Sequence[str], point: Sequence[float], digits: int = 40
) -> tuple[float, list[float]]:
    """Value and partial derivatives at a scalar point, by mpmath at `digits` digits."""
    import mpmath as mp

    func = mpmath_function(expr, inputs)
    with mp.workdps(digits):
        args = [mp.mpf(p) for p in point]
        value = func(*args)
        grads = []
        for i in range(len(args)):

            def partial(t: Any, i: int = i) -> Any:
                moved = list(args)
                moved[i] = t
                return func(*moved)

            grads.append(float(mp.diff(partial, args[i])))
        return float(value), grads


def finite_differences(
    forward: Any, args: Sequence[np.ndarray], step: float = 1e-6
) -> list[np.ndarray]:
    """Central differences of sum(forward(*args)) with respect to each argument."""
    grads = []
    for i, arg in enumerate(args):
        arg = np.asarray(arg, dtype=np.float64)
        grad = np.zeros_like(arg)
        for index in np.ndindex(arg.shape):
            h = step * max(1.0, abs(float(arg[index])))
            up, down = arg.copy(), arg.copy()
            up[index] += h
            down[index] -= h
            moved_up = list(args)
            moved_down = list(args)
            moved_up[i], moved_down[i] = up, down
            grad[index] = (
                np.sum(forward(*moved_up)) - np.sum(forward(*moved_down))
            ) / (2 * h)
        grads.append(grad)
    return grads
