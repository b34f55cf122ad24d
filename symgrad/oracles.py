"""Oracles that symgrad did not write: PyTorch autograd, mpmath, finite differences.

`symgrad check` and the tests compare symgrad's numbers with these. PyTorch and mpmath
compute the user's original string operation by operation (Python's ast of it), each
operation by its registry row's `torch` or `mpmath` reference: never SymPy's simplified
form, which may compute something else at a kink (x/x is 1, but 0/0 is nan).
PyTorch is imported only when asked for (it is an optional, test-time dependency);
mpmath comes with SymPy.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from symgrad import registry
from symgrad.parse import PYTHON_OPERATORS
from symgrad.printing import to_text


class NoReference(Exception):
    """An oracle cannot compute the expression (a row without a reference)."""


def walk(
    text: str,
    leaf: Callable[[str], Any],
    const: Callable[[float], Any],
    apply: Callable[[registry.Rule, list[Any]], Any],
) -> Any:
    """Evaluate the user's string operation by operation, as written.

    Python's ast of `text` (``^`` is power, as the parser reads it) is walked; every
    operator and call is resolved to its registry row and computed by `apply(rule,
    args)`. Nothing is simplified or folded first: the reference computes what the user
    wrote, not SymPy's form of it.
    """
    tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body

    def number(node: ast.AST) -> float | None:
        if isinstance(node, ast.Constant) and not isinstance(node.value, str):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in registry.CONSTANTS:
            return float(registry.CONSTANTS[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return number(node.operand)
        return None

    def ev(node: ast.AST) -> Any:
        value = number(node)
        if value is not None:
            return const(value)
        if isinstance(node, ast.Name):
            return leaf(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return ev(node.operand)
            rule = registry.BY_OPERATOR[(PYTHON_OPERATORS[type(node.op)], 1)]
            return apply(rule, [ev(node.operand)])
        if isinstance(node, ast.BinOp):
            rule = registry.BY_OPERATOR[(PYTHON_OPERATORS[type(node.op)], 2)]
            return apply(rule, [ev(node.left), ev(node.right)])
        if isinstance(node, ast.BoolOp):
            rule = registry.BY_OPERATOR[(PYTHON_OPERATORS[type(node.op)], 2)]
            result = ev(node.values[0])
            for other in node.values[1:]:
                result = apply(rule, [result, ev(other)])
            return result
        if isinstance(node, ast.Compare):  # a < b < c is (a < b) and (b < c)
            operands = [ev(node.left), *(ev(c) for c in node.comparators)]
            result = None
            for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
                mask = apply(
                    registry.COMPARISONS[PYTHON_OPERATORS[type(op)]], [left, right]
                )
                result = (
                    mask
                    if result is None
                    else apply(registry.BY_OPERATOR[("and", 2)], [result, mask])
                )
            return result
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return call(node.func.id, node.args)
        raise ValueError(f"cannot compute {ast.unparse(node)!r}")

    def call(name: str, args: list[ast.expr]) -> Any:
        if name == "norm" and len(args) == 2:
            # norm(x, p): the row whose signature spells this p ("norm(x, 1)", ...)
            p = number(args[1])
            for rule in registry.RULES:
                sig = ast.parse(rule.signature, mode="eval").body
                if (
                    isinstance(sig, ast.Call)
                    and ast.unparse(sig.func) == "norm"
                    and len(sig.args) == 2
                    and number(sig.args[1]) == p
                ):
                    return apply(rule, [ev(args[0])])
            raise ValueError(f"norm(x, p): no row for p = {p}")
        for rule in registry.rules_named(name):
            low, high = rule.arity
            if low <= len(args) and (high is None or len(args) <= high):
                values = [ev(a) for a in args]
                if high is None:  # max(a, b, c): pairwise, as the parser builds it
                    result = values[0]
                    for value in values[1:]:
                        result = apply(rule, [result, value])
                    return result
                return apply(rule, values)
        raise ValueError(f"no row for {name}() with {len(args)} arguments")

    return ev(tree)


def _text(expr: str | sp.Expr) -> str:
    return expr if isinstance(expr, str) else to_text(expr)


def torch_value_and_grad(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    grad_output: Any = None,
    dtype: str = "float64",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Value and gradients by PyTorch autograd (the reference) of the string as written.

    Each operation is the registry row's `torch` reference (see `walk`). A mask (bool
    tensor) used as a number becomes 0/1 in `dtype`, except in the argument positions a
    row takes masks as they are (`Rule.mask_args`). Inputs that get no gradient (a
    comparison's output carries none in PyTorch) get zeros.
    """
    import torch

    tdtype = getattr(torch, dtype)
    leaves = {
        n: torch.tensor(np.asarray(values[n]), dtype=tdtype, requires_grad=True)
        for n in inputs
    }

    def apply(rule: registry.Rule, args: list[Any]) -> Any:
        args = [
            a.to(tdtype) if a.dtype == torch.bool and i not in rule.mask_args else a
            for i, a in enumerate(args)
        ]
        return rule.torch(torch, *args)

    value = walk(
        _text(expr),
        lambda name: leaves[name],
        lambda v: torch.tensor(v, dtype=tdtype),
        apply,
    )
    if value.dtype == torch.bool:
        value = value.to(tdtype)
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


def mpmath_function(expr: str | sp.Expr, inputs: Sequence[str]) -> Callable[..., Any]:
    """The string as an mpmath function of scalar inputs, row by row as written.

    Raises `NoReference` when a row it uses has no mpmath reference (`Rule.no_mpmath`).
    """
    import mpmath as mp

    text = _text(expr)
    missing = {}

    def apply(rule: registry.Rule, args: list[Any]) -> Any:
        if rule.mpmath is None:
            missing[rule.name] = rule.no_mpmath or "no mpmath reference"
            raise NoReference(f"{rule.name}: {missing[rule.name]}")
        return mp.mpf(rule.mpmath(mp, *args))

    def function(*point: Any) -> Any:
        bound = dict(zip(inputs, point, strict=True))
        return walk(text, bound.__getitem__, mp.mpf, apply)

    return function


def mpmath_gradient(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    point: Sequence[float],
    digits: int = 40,
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
