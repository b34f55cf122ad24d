"""The one evaluator: the value of any node of an expression graph, with NumPy.

Each registry row spells its operation in NumPy (``numpy="np.sin({0})"``); generated
modules print that spelling, and this evaluator runs *the same spelling*: it is parsed
once per row into a small tree of NumPy calls, operators and runtime helpers (never
`eval`: only the registry's own strings are read, and only names of `numpy` and of
`symgrad.runtime` can be called). So `--at`, `--steps`, `plot`, `check` and the
generated module compute every step identically; the tests compare them bit for bit.

`value_and_grad(text, values, grad_output)` is the public entry: parse, build the
reverse program, evaluate.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from symgrad import registry, runtime
from symgrad.errors import SymgradError

Kernel = Callable[..., Any]

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def helper(name: str) -> Callable[..., Any]:
    """The runtime helper `name` (`_erf`) as a function of `symgrad.runtime`."""
    try:
        return runtime.HELPERS[name]
    except KeyError:
        raise LookupError(f"no runtime helper {name!r} in symgrad/runtime") from None


def spelling(rule: registry.Rule, nargs: int) -> str:
    """The row's NumPy spelling, with placeholders {0}, {1}, ... for its arguments."""
    if callable(rule.numpy):
        return rule.numpy(*(f"{{{i}}}" for i in range(nargs)))
    return rule.numpy


@functools.cache
def kernel(op: str, nargs: int) -> Kernel:
    """A function computing `op` on `nargs` NumPy values, from the row's spelling."""
    rule = registry.BY_NAME[op]
    source = spelling(rule, nargs)
    text = source
    for i in range(nargs):
        text = text.replace(f"{{{i}}}", f"__arg{i}")
    tree = ast.parse(text, mode="eval").body
    return _compile(tree, source)


def _compile(node: ast.AST, source: str) -> Kernel:
    """A closure computing the registry spelling `node` from positional arguments."""
    if isinstance(node, ast.Name) and node.id.startswith("__arg"):
        index = int(node.id[5:])
        return lambda args: args[index]
    if isinstance(node, ast.Constant) and isinstance(
        node.value, (int, float, bool, type(None))
    ):
        value = node.value
        return lambda args: value
    if isinstance(node, ast.Subscript):  # 1-D basic indexing: x[a:b:c], x[i]
        array = _compile(node.value, source)
        if isinstance(node.slice, ast.Slice):
            bounds = [
                _compile(part, source) if part is not None else (lambda args: None)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return lambda args: array(args)[slice(*(_bound(b(args)) for b in bounds))]
        element = _compile(node.slice, source)
        return lambda args: array(args)[_bound(element(args))]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id == "np":
            attribute = getattr(np, node.attr)
            return lambda args: attribute
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        function = helper(node.id)
        return lambda args: function
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        binop = _BINOPS[type(node.op)]
        left, right = _compile(node.left, source), _compile(node.right, source)
        return lambda args: binop(left(args), right(args))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        operand = _compile(node.operand, source)
        return lambda args: -operand(args)
    if (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and type(node.ops[0]) in _COMPARE
    ):
        compare = _COMPARE[type(node.ops[0])]
        left = _compile(node.left, source)
        right = _compile(node.comparators[0], source)
        return lambda args: compare(left(args), right(args))
    if isinstance(node, ast.Call):
        function = _compile(node.func, source)
        positional = [_compile(a, source) for a in node.args]
        keywords = {k.arg: _compile(k.value, source) for k in node.keywords}
        return lambda args: function(args)(
            *(p(args) for p in positional),
            **{k: v(args) for k, v in keywords.items()},
        )
    raise ValueError(f"registry spelling {source!r}: cannot evaluate {ast.dump(node)}")


def _bound(value: Any) -> int | None:
    """A slice bound or an index as Python's int (graph constants are floats)."""
    return None if value is None else int(value)


def apply(op: str, values: Sequence[Any]) -> Any:
    """`op` of already computed argument values (arrays, floats or bools)."""
    compiled = kernel(op, len(values))
    return compiled(values)


def fold(op: str, values: Sequence[float | bool]) -> float | bool:
    """An operation on constants, as float64 (PyTorch's 0-d float64 tensors)."""
    args = [v if type(v) is bool else np.float64(v) for v in values]
    with np.errstate(all="ignore"):
        result = apply(op, args)
    if isinstance(result, (bool, np.bool_)):
        return bool(result)
    return float(np.float64(result))


def run(
    nodes: Sequence[Any], bindings: Mapping[int, Any], keep: bool = True
) -> dict[int, Any]:
    """The value of every node in `nodes` (topological order), given its leaves.

    `bindings` maps the ids of input nodes to their values. Returns values by node id.
    """
    values: dict[int, Any] = dict(bindings)
    with np.errstate(all="ignore"):
        for node in nodes:
            if node.id in values:
                continue
            if node.op == "const":
                values[node.id] = node.value
            elif node.op == "input":
                raise KeyError(f"no value for input {node.name!r}")
            else:
                args = [values[a.id] for a in node.args]
                try:
                    values[node.id] = apply(node.op, args)
                except (ValueError, TypeError, ArithmeticError, IndexError) as exc:
                    raise _failure(node.op, args, exc) from None
    return values


def _failure(op: str, args: Sequence[Any], exc: Exception) -> SymgradError:
    """A clear error for an operation NumPy refused (max of an empty array)."""
    rule = registry.BY_NAME[op]
    if op in ("index", "slice") and np.ndim(args[0]) != 1:
        return SymgradError(
            f"indexing needs a 1-D array, got {np.ndim(args[0])}-D (shape "
            f"{np.shape(args[0])})"
        )
    if op == "index":
        return SymgradError(
            f"index {int(args[1])} is out of range for an array of "
            f"{np.size(args[0])} elements"
        )
    if rule.reduction and any(np.size(a) == 0 for a in args):
        return SymgradError(
            f"{rule.signature} of an empty array has no value (PyTorch raises too)"
        )
    return SymgradError(f"cannot compute {rule.signature} here: {exc}")


def as_input(value: Any) -> np.ndarray:
    """An input as generated modules take it (floats keep their dtype)."""
    return runtime.HELPERS["_as_input"](value)


def value_and_grad(
    text: str,
    values: Mapping[str, Any],
    grad_output: Any = None,
    *,
    convention: str = "torch",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parse `text` and return its value and each input's gradient at `values`."""
    from symgrad.reverse import build

    program = build(text, convention=convention)
    return program.value_and_grad(values, grad_output)
