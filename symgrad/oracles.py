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
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = number(node.operand)
            return (
                None
                if inner is None or not isinstance(node.operand, ast.Constant)
                else -inner
            )
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
        if isinstance(node, ast.Subscript):  # x[a:b:c], x[i]: bounds as numbers
            index = node.slice
            if isinstance(index, ast.Slice):
                parts = (index.lower, index.upper, index.step)
                bounds = [None if p is None else const(number(p)) for p in parts]
                return apply(registry.BY_NAME["slice"], [ev(node.value), *bounds])
            return apply(
                registry.BY_NAME["index"], [ev(node.value), const(number(index))]
            )
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


def torch_function(
    expr: str | sp.Expr, inputs: Sequence[str], dtype: str = "float64"
) -> Callable[..., Any]:
    """The string as a function of torch tensors (one per input), row by row as
    written (see `walk`): what torch.autograd and torch.func differentiate.

    Each operation is the registry row's `torch` reference. A mask (bool tensor) used
    as a number becomes 0/1 in `dtype`, except in the argument positions a row takes
    masks as they are (`Rule.mask_args`); a mask-valued result is a number too.
    """
    import torch

    tdtype = getattr(torch, dtype)
    text = _text(expr)

    def apply(rule: registry.Rule, args: list[Any]) -> Any:
        args = [
            a.to(tdtype)
            if a is not None and a.dtype == torch.bool and i not in rule.mask_args
            else a
            for i, a in enumerate(args)
        ]
        return rule.torch(torch, *args)

    def function(*tensors: Any) -> Any:
        bound = dict(zip(inputs, tensors, strict=True))
        value = walk(
            text, bound.__getitem__, lambda v: torch.tensor(v, dtype=tdtype), apply
        )
        return value.to(tdtype) if value.dtype == torch.bool else value

    return function


def _tensors(
    inputs: Sequence[str], values: Mapping[str, Any], dtype: str
) -> tuple[Any, ...]:
    import torch

    return tuple(
        torch.tensor(np.asarray(values[n]), dtype=getattr(torch, dtype)) for n in inputs
    )


def torch_value_and_grad(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    grad_output: Any = None,
    dtype: str = "float64",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Value and gradients by PyTorch autograd (the reference) of the string as
    written (`torch_function`). Inputs that get no gradient (a comparison's output
    carries none in PyTorch) get zeros."""
    import torch

    leaves = [t.requires_grad_(True) for t in _tensors(inputs, values, dtype)]
    value = torch_function(expr, inputs, dtype)(*leaves)
    grads: list[np.ndarray] = []
    if value.requires_grad:
        seed = (
            torch.ones_like(value)
            if grad_output is None
            else torch.tensor(np.asarray(grad_output), dtype=value.dtype)
        )
        got = torch.autograd.grad(value, leaves, seed, allow_unused=True)
        for leaf, g in zip(leaves, got, strict=True):
            grads.append(
                np.zeros(leaf.shape, dtype=dtype) if g is None else g.detach().numpy()
            )
    else:
        grads = [np.zeros(leaf.shape, dtype=dtype) for leaf in leaves]
    return value.detach().numpy(), grads


def torch_jvp(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    tangents: Mapping[str, Any],
    dtype: str = "float64",
) -> tuple[np.ndarray, np.ndarray]:
    """Value and tangent by `torch.func.jvp` (PyTorch's forward mode)."""
    import torch

    primals = _tensors(inputs, values, dtype)
    directions = tuple(
        t.expand(p.shape).clone()
        for t, p in zip(_tensors(inputs, tangents, dtype), primals, strict=True)
    )
    value, tangent = torch.func.jvp(
        torch_function(expr, inputs, dtype), primals, directions
    )
    return value.detach().numpy(), tangent.detach().numpy()


def torch_hvp(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    vectors: Mapping[str, Any],
    grad_output: Any = None,
    dtype: str = "float64",
) -> list[np.ndarray]:
    """The Hessian of sum(f * grad_output) times the vectors by PyTorch's double
    backward: the gradient of sum(gradient * vectors), the gradient taken with
    create_graph (what `torch.autograd.functional.vhp` computes; its `hvp` goes
    through a further backward, which gives 0 where this gives nan, e.g. the
    Hessian of norm(x) at 0)."""
    import torch

    leaves = [t.requires_grad_(True) for t in _tensors(inputs, values, dtype)]
    directions = [
        t.expand(p.shape)
        for t, p in zip(_tensors(inputs, vectors, dtype), leaves, strict=True)
    ]
    value = torch_function(expr, inputs, dtype)(*leaves)
    zeros = [np.zeros(leaf.shape, dtype=dtype) for leaf in leaves]
    if not value.requires_grad:
        return zeros
    seed = (
        torch.ones_like(value)
        if grad_output is None
        else torch.tensor(np.asarray(grad_output), dtype=value.dtype)
    )
    grads = torch.autograd.grad(
        value, leaves, seed, create_graph=True, allow_unused=True
    )
    total = sum(
        (g * v).sum()
        for g, v in zip(grads, directions, strict=True)
        if g is not None and g.requires_grad
    )
    if not torch.is_tensor(total):
        return zeros
    products = torch.autograd.grad(total, leaves, allow_unused=True)
    return [
        z if p is None else p.detach().numpy(force=True)
        for z, p in zip(zeros, products, strict=True)
    ]


def torch_forward_over_reverse(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    vectors: Mapping[str, Any],
    dtype: str = "float64",
) -> list[np.ndarray]:
    """H v by torch.func: the jvp of the gradient of sum(f), PyTorch's other way to
    a Hessian-vector product (where it differs from the double backward, PyTorch is
    not a reference)."""
    import torch

    function = torch_function(expr, inputs, dtype)
    primals = _tensors(inputs, values, dtype)
    directions = tuple(
        t.expand(p.shape).clone()
        for t, p in zip(_tensors(inputs, vectors, dtype), primals, strict=True)
    )
    grad = torch.func.grad(
        lambda *ts: function(*ts).sum(), argnums=tuple(range(len(inputs)))
    )
    _, products = torch.func.jvp(grad, primals, directions)
    return [p.detach().numpy(force=True) for p in products]


def torch_hessian(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    values: Mapping[str, Any],
    dtype: str = "float64",
) -> list[list[np.ndarray]]:
    """H[i][j] of sum(f), shape in_i.shape + in_j.shape, by
    `torch.autograd.functional.hessian`."""
    import torch

    function = torch_function(expr, inputs, dtype)
    primals = _tensors(inputs, values, dtype)
    blocks = torch.autograd.functional.hessian(
        lambda *tensors: function(*tensors).sum(), primals
    )
    if torch.is_tensor(blocks):
        blocks = ((blocks,),)
    return [[b.detach().numpy() for b in row] for row in blocks]


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


def mpmath_hessian(
    expr: str | sp.Expr,
    inputs: Sequence[str],
    point: Sequence[float],
    digits: int = 40,
) -> list[list[float]]:
    """Second partial derivatives at a scalar point, by mpmath at `digits` digits."""
    import mpmath as mp

    func = mpmath_function(expr, inputs)
    with mp.workdps(digits):
        args = [mp.mpf(p) for p in point]
        n = len(args)
        hessian = [[0.0] * n for _ in range(n)]
        for i in range(n):
            for j in range(i + 1):
                orders = [0] * n
                orders[i] += 1
                orders[j] += 1
                entry = float(mp.diff(func, args, tuple(orders)))
                hessian[i][j] = hessian[j][i] = entry
        return hessian


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
