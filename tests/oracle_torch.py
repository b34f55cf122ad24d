"""The PyTorch oracle: the user's string, run operation by operation in PyTorch.

symgrad's parser and SymPy never see the values here. The text is read the way a user
wrote it: `^` becomes `**`, Python's own `ast.parse(mode="eval")` builds the tree, and
this module walks the tree calling torch:

- `+ * **` use the registry's `add`/`mul`/`pow` rows (`a + b`, `a * b`, `a ** b`);
  `- /` and unary `-` are torch's tensor operators; `a < b` ... `a != b` and
  `and`/`or`/`not` use the registry's `lt` ... `ne`, `and`, `or`, `not` rows; a chain
  `a < b < c` is `(a < b) and (b < c)` (b computed once); `a and b and c` folds left.
- A call `name(args)` takes the row of `symgrad.registry.rules_named(name)` whose arity
  fits the argument count (`max(x)` the reduction, `max(a, b)` the elementwise row).
  A row with its own `build` (n-ary max/min fold, `norm(x, p)`) has no torch
  reference of its own for every argument count: its builder is applied once to
  SymPy *placeholders* (Dummy symbols; a literal argument such as norm's p as its
  number), only to learn which registry rows it expands to (`sqrt(d)` is
  `Pow(d, 1/2)`, `max(a, b, c)` is `maximum(maximum(a, b), c)`, `norm(x, inf)` is
  `norminf(x)`); those rows' torch references then run on the tensors. SymPy never
  evaluates a value.
- Numbers: every literal (and `pi`, `e`, `inf` from `registry.CONSTANTS`) is a 0-d
  float64 tensor, so `1/0` is inf, `0/0` nan and `10**400` inf (float semantics; an
  integer too large for a double is inf). A part of the expression that uses no input
  is a *constant*: it is computed in float64; where it meets a part that uses inputs it
  is cast to that part's dtype, as PyTorch casts a 0-d tensor next to a dimensioned
  one. This is also done when the input part is itself 0-d (PyTorch eager would promote
  a 0-d float32 input to float64 there; symgrad's documented rule is that constants
  never change the inputs' dtype).
- Masks: comparisons and logical operators give bool tensors. Used as a number (an
  operand of arithmetic, a function's argument, a `where` branch, and the final value
  itself) a mask is exactly 0/1 in the inputs' float dtype (the result dtype of all
  inputs; float64 for a mask made of constants only). The condition of
  `where(c, a, b)` is `c != 0` (the registry row's own reference).
- dtype: a registry function's floating result is cast to the result dtype of its
  arguments (the references are PyTorch's eager ops, which already do this, except
  `size`'s `torch.tensor(float(n))`, which takes the global default dtype).
- Gradient: `torch.autograd.grad((f * grad_output).sum(), inputs, allow_unused=True)`;
  an unused input (or one reaching f only through comparisons) gets zeros.

`where`: the branch not taken sends nothing into the gradient. symgrad
(symgrad/reverse.py) gives every node inside a branch of `where(c, a, b)` a gate (c for
a, not c for b, the `and` of the conditions in nested wheres), and every contribution
a gated node makes to its arguments is `where(gate, g * partial, 0)`: a nan or inf
partial never passes where the gate is false. PyTorch's plain reverse mode would send
the untaken branch a zero cotangent that such a partial turns into nan
(pytorch/pytorch#68425). The oracle does what symgrad does, in reverse mode: every
operand of every operation evaluated inside a branch (inputs, constants and the results
of sub-operations alike) goes through `Gate`, the identity forward and
`torch.where(gate, grad, 0)` backward. Nested wheres `and` their gates. Shapes: an
operation's gate is its condition brought to the operation's own shape (broadcast where
the operation is larger, `any` over the elements it is summed from where it is smaller:
an operation that feeds a broadcast or a reduction is taken if any element it feeds
is), and `Gate` broadcasts its operand forward to the shape of the contribution (the
operation's broadcast shape), so the select comes before the sum back to the operand's
shape. Gates are found when backward runs, once every shape is known (`_Site`).

symgrad hash-conses: a subexpression written several times is one node, computed once,
whose adjoint sums its consumers' contributions and is ungated if any contribution is
ungated (else gated by the `or` of theirs). The oracle caches nothing: each occurrence
in the text is evaluated on its own and gated by where it stands (only a chain
comparison's middle operand and a builder's arguments are reused, within one operation
and so under one gate). Values agree (the same operations on the same numbers). The
gradients are the same sum: symgrad's `select(G, (s1 + s2) * p)` against the oracle's
`select(G1, s1 * p) + select(G2, s2 * p)`, where each contribution s_k is already 0
wherever its own gate G_k is false. They can differ only in rounding, or where p is inf
or nan: there the oracle's split sum may say nan, which the fuzzer reads as "no
reference here", never as a wrong answer.

`Result` also carries the scales the fuzzer's absolute tolerances need: the largest
finite magnitude among all forward intermediates, and among all cotangents that
PyTorch's backward passes along the graph's edges (the terms summed into a gradient),
so that a cancellation is judged against the size of what cancelled.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
import sympy as sp
import torch

from symgrad import registry

_COMPARE_ROWS = {
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Eq: "eq",
    ast.NotEq: "ne",
}
_EMPTY_MESSAGES = ("numel() == 0", "empty tensor")


class OracleUndefined(Exception):
    """PyTorch itself defines no value here (e.g. max() of an empty tensor)."""


@dataclass
class Val:
    """A tensor, whether it uses no input (constant), and its literal number if any."""

    t: torch.Tensor
    const: bool
    literal: float | None = None


@dataclass
class Result:
    """What the oracle says about one expression at one point."""

    value: np.ndarray
    grads: dict[str, np.ndarray]
    inputs: tuple[str, ...]
    rows: set[str] = field(default_factory=set)
    value_scale: float = 0.0
    grad_scale: float = 0.0

    @property
    def torch_rtol(self) -> float:
        """How closely PyTorch's references are right, by the registry (relative)."""
        rows = [registry.BY_NAME[r] for r in self.rows if r in registry.BY_NAME]
        return max((row.torch_rtol for row in rows), default=1e-12)


def source(text: str) -> str:
    """The text as Python reads it: `^` is power, line breaks are spaces."""
    for ch in "\r\n\t":
        text = text.replace(ch, " ")
    return text.replace("^", "**").strip()


def parse(text: str) -> ast.Expression:
    return ast.parse(source(text), mode="eval")


def input_names(text: str) -> tuple[str, ...]:
    """The inputs of `text` in order of first appearance (constants excluded)."""
    tree = parse(text)
    seen: dict[str, tuple[int, int]] = {}
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and id(node) not in calls
            and node.id not in registry.CONSTANTS
        ):
            where = (node.lineno, node.col_offset)
            seen[node.id] = min(seen.get(node.id, where), where)
    return tuple(sorted(seen, key=seen.__getitem__))


def _max_abs(t: torch.Tensor | None) -> float:
    if t is None or not t.is_floating_point() or t.numel() == 0:
        return 0.0
    a = t.detach().abs()
    a = a[torch.isfinite(a)]
    return float(a.max()) if a.numel() else 0.0


def _literal_number(value: float) -> sp.Expr:
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if float(value).is_integer():
        return sp.Integer(int(value))
    return sp.Float(value)


class _Site:
    """One operation evaluated inside a `where` branch; its gate, found at backward.

    `parent` consumes the operation's result: the `_Site` of the operation above, or
    the `_Branch` of the where whose branch this operation tops. `shape` is the result's
    shape, set once the operation has run.
    """

    def __init__(self, parent: _Site | _Branch) -> None:
        self.parent = parent
        self.shape: torch.Size | None = None
        self._gate: torch.Tensor | None = None

    def gate(self) -> torch.Tensor:
        """Where this operation's contributions pass (a bool tensor, its shape)."""
        if self._gate is None:
            assert self.shape is not None, "backward through an operation never run"
            self._gate = self.parent.gate_for(self.shape)
        return self._gate

    def gate_for(self, shape: torch.Size) -> torch.Tensor:
        """The gate of a contribution (or of an argument) of `shape`."""
        return _fit(self.gate(), shape)


class _Branch:
    """Branch a (or b: `negate`) of a where: its condition and the where's own site."""

    def __init__(self, where: _Site | None, negate: bool) -> None:
        self.where = where
        self.negate = negate
        self.cond: torch.Tensor | None = None  # `c != 0`, once the where has its args

    def gate_for(self, shape: torch.Size) -> torch.Tensor:
        assert self.cond is not None
        gate = ~self.cond if self.negate else self.cond
        if self.where is not None:  # nested: the where itself is inside a branch
            gate = gate & self.where.gate()
        return _fit(gate, shape)


def _fit(gate: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """`gate` brought to `shape`: broadcast, and `any` over what is summed away."""
    full = torch.broadcast_shapes(gate.shape, shape)
    return gate.expand(full).to(torch.int64).sum_to_size(shape) > 0


class Gate(torch.autograd.Function):
    """An operand inside a where branch: identity forward (broadcast to the shape of its
    contribution); backward `torch.where(gate, grad, 0)`, then summed to its shape."""

    @staticmethod
    def forward(t: torch.Tensor, site: _Site, shape: torch.Size) -> Any:
        return t.expand(shape).clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        t, site, shape = inputs
        ctx.site, ctx.shape, ctx.in_shape = site, shape, t.shape

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        gate = ctx.site.gate_for(ctx.shape)
        grad = torch.where(gate, grad, grad.new_zeros(()))
        return grad.sum_to_size(ctx.in_shape), None, None

    @staticmethod
    def jvp(ctx: Any, t_dot: torch.Tensor, site_dot: Any, shape_dot: Any) -> Any:
        return t_dot.expand(ctx.shape).clone()


def _trigamma_poles(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """trigamma's value +inf at its poles (the integers <= 0), for later operations.

    torch.polygamma(1, -3.0) is a finite stand-in, 7.3e31 (1.7e16 in float32), that an
    operation after it would use as a number (`trigamma(-3) * 0` is 0, not inf * 0 =
    nan). The gradient passes through unchanged, as PyTorch's own."""
    x = x.detach()
    pole = (x <= 0) & (x == torch.floor(x)) & torch.isfinite(x) & torch.isfinite(out)
    return out + torch.where(pole, math.inf, 0.0).to(out.dtype)


class _NoSlopeAtMinusInf(torch.autograd.Function):
    """digamma's and trigamma's argument: the identity; backward nan where it is -inf
    (no reference: torch.polygamma(2, -inf) is -inf and polygamma(1, -inf) is 0,
    though digamma(-inf) and trigamma(-inf) are nan: poles at every integer below)."""

    @staticmethod
    def forward(x: torch.Tensor) -> Any:
        return x.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        return torch.where(torch.isneginf(x), math.nan, grad)

    @staticmethod
    def jvp(ctx: Any, x_dot: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        return torch.where(torch.isneginf(x), math.nan, x_dot)


class _PoleSlope(torch.autograd.Function):
    """digamma's argument: the identity; its slope at a pole (an integer <= 0) is
    +inf (trigamma's value there), where torch.polygamma(1, x) gives a finite stand-in
    (4e28 at -800)."""

    @staticmethod
    def forward(x: torch.Tensor) -> Any:
        return x.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        pole = (x <= 0) & (x == torch.floor(x)) & torch.isfinite(x)
        return torch.where(pole & (grad != 0), grad * math.inf, grad)

    @staticmethod
    def jvp(ctx: Any, x_dot: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        pole = (x <= 0) & (x == torch.floor(x)) & torch.isfinite(x)
        return torch.where(pole & (x_dot != 0), x_dot * math.inf, x_dot)


class _Evaluator:
    """One walk of the tree: tensors for every node, the registry rows it used."""

    def __init__(self, leaves: Mapping[str, torch.Tensor], fdtype: torch.dtype):
        self.leaves = leaves
        self.fdtype = fdtype
        self.rows: set[str] = set()
        self.intermediates: list[torch.Tensor] = []
        # what consumes the node being evaluated, inside a where branch (else None)
        self.parent: _Site | _Branch | None = None

    # --- numbers and dtypes ---------------------------------------------------------
    def const(self, value: float) -> Val:
        return Val(torch.tensor(value, dtype=torch.float64), True, value)

    def numbers(self, args: list[Val]) -> list[torch.Tensor]:
        """Masks as 0/1 numbers; constants cast to the dtype of the input parts."""
        dtypes = [
            self.fdtype if a.t.dtype == torch.bool else a.t.dtype
            for a in args
            if not a.const
        ]
        target = reduce(torch.promote_types, dtypes) if dtypes else None
        out = []
        for a in args:
            t = a.t
            if t.dtype == torch.bool:
                t = t.to(target or (torch.float64 if a.const else self.fdtype))
            elif a.const and target is not None and t.dtype != target:
                t = t.to(target)
            out.append(t)
        return out

    def record(self, t: torch.Tensor) -> torch.Tensor:
        self.intermediates.append(t)
        return t

    # --- where's gates --------------------------------------------------------------
    def site(self) -> _Site | None:
        """The site of an operation about to be evaluated (None outside branches)."""
        return None if self.parent is None else _Site(self.parent)

    def under(self, parent: _Site | _Branch | None, node: ast.AST) -> Val:
        """`node` evaluated as an argument consumed by `parent`."""
        saved, self.parent = self.parent, parent
        try:
            return self.ev(node)
        finally:
            self.parent = saved

    def gated(self, site: _Site | None, tensors: list[torch.Tensor]) -> list[Any]:
        """An operation's operands, each through `Gate` inside a branch."""
        if site is None or not torch.is_grad_enabled():
            return tensors
        try:
            shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        except RuntimeError:
            return tensors  # the operation itself will say what is wrong
        return [Gate.apply(t, site, shape) if t.requires_grad else t for t in tensors]

    def ran(self, site: _Site | None, out: torch.Tensor) -> torch.Tensor:
        if site is not None:
            site.shape = out.shape
        return out

    # --- operations -----------------------------------------------------------------
    def apply(
        self,
        rule: registry.Rule,
        args: list[Val],
        site: _Site | None = None,
        branches: tuple[_Branch, ...] = (),
    ) -> Val:
        """One registry row's torch reference on the arguments."""
        self.rows.add(rule.name)
        tensors = self.numbers(args)
        for branch in branches:  # where: its condition, as its reference reads it
            branch.cond = tensors[0].detach() != 0
        operands = self.gated(site, tensors)
        if rule.name in ("digamma", "trigamma") and operands[0].requires_grad:
            operands[0] = _NoSlopeAtMinusInf.apply(operands[0])
        if rule.name == "digamma" and operands[0].requires_grad:
            operands[0] = _PoleSlope.apply(operands[0])
        out = rule.torch(torch, *operands)
        if not torch.is_tensor(out):
            out = torch.tensor(out, dtype=torch.float64)
        if out.is_floating_point() and tensors:
            want = reduce(torch.promote_types, (t.dtype for t in tensors))
            if out.dtype != want:
                out = out.to(want)
        if rule.name == "trigamma":
            out = _trigamma_poles(tensors[0], out)
        return Val(self.record(self.ran(site, out)), all(a.const for a in args))

    def power(self, left: Val, right: Val, site: _Site | None) -> Val:
        """`a ** b` and pow(a, b); a literal exponent as PyTorch code writes it, a
        Python number (`x ** 0.5` takes PyTorch's sqrt path: nan at -inf, as NumPy's
        does; a 0-d tensor exponent takes pow's: inf)."""
        if right.literal is not None and not left.const:
            number = right.literal
            return self.operator(lambda a: a**number, [left], site)
        return self.apply(registry.BY_NAME["pow"], [left, right], site)

    def operator(
        self, fn: Callable[..., torch.Tensor], args: list[Val], site: _Site | None
    ) -> Val:
        out = fn(*self.gated(site, self.numbers(args)))
        return Val(self.record(self.ran(site, out)), all(a.const for a in args))

    # --- the walk -------------------------------------------------------------------
    def ev(self, node: ast.AST) -> Val:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise ValueError(f"the oracle does not know {type(node).__name__}")
        return method(node)

    def _Expression(self, node: ast.Expression) -> Val:
        return self.ev(node.body)

    def _Constant(self, node: ast.Constant) -> Val:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"not a number: {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the doubles
            number = math.inf
        return self.const(number)

    def _Name(self, node: ast.Name) -> Val:
        if node.id in registry.CONSTANTS:
            return self.const(float(registry.CONSTANTS[node.id]))
        return Val(self.leaves[node.id], False)

    def _UnaryOp(self, node: ast.UnaryOp) -> Val:
        if isinstance(node.op, ast.UAdd):
            return self.ev(node.operand)
        site = self.site()
        operand = self.under(site, node.operand)
        if isinstance(node.op, ast.Not):
            return self.apply(registry.BY_NAME["not"], [operand], site)
        if isinstance(node.op, ast.USub):
            out = self.operator(torch.neg, [operand], site)
            if operand.literal is not None:
                out.literal = -operand.literal
            return out
        raise ValueError(f"the oracle does not know {type(node.op).__name__}")

    def _BinOp(self, node: ast.BinOp) -> Val:
        site = self.site()
        left, right = self.under(site, node.left), self.under(site, node.right)
        op = type(node.op)
        if op is ast.Add:
            return self.apply(registry.BY_NAME["add"], [left, right], site)
        if op is ast.Mult:
            return self.apply(registry.BY_NAME["mul"], [left, right], site)
        if op is ast.Pow:
            return self.power(left, right, site)
        if op is ast.Sub:
            return self.operator(torch.sub, [left, right], site)
        if op is ast.Div:
            return self.operator(torch.div, [left, right], site)
        raise ValueError(f"the oracle does not know {op.__name__}")

    # Masks carry no gradient: their operations need no gate (their operands' own
    # operations still get theirs, never reached by a backward pass).
    def _BoolOp(self, node: ast.BoolOp) -> Val:
        rule = registry.BY_NAME["and" if isinstance(node.op, ast.And) else "or"]
        site = self.site()
        result = self.under(site, node.values[0])
        for value in node.values[1:]:
            result = self.apply(rule, [result, self.under(site, value)])
        return result

    def _Compare(self, node: ast.Compare) -> Val:
        site = self.site()
        left = self.under(site, node.left)
        result: Val | None = None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.under(site, comparator)
            mask = self.apply(registry.BY_NAME[_COMPARE_ROWS[type(op)]], [left, right])
            if result is None:
                result = mask
            else:
                result = self.apply(registry.BY_NAME["and"], [result, mask])
            left = right
        assert result is not None
        return result

    def _Call(self, node: ast.Call) -> Val:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ValueError("only plain calls f(a, b) are in the language")
        name, count = node.func.id, len(node.args)
        fits = [
            rule
            for rule in registry.rules_named(name)
            if rule.arity[0] <= count
            and (rule.arity[1] is None or count <= rule.arity[1])
        ]
        site = self.site()
        if not fits:
            for a in node.args:
                self.under(site, a)
            raise ValueError(f"no registry row {name}() with {count} arguments")
        rule = fits[0]
        if rule.name == "where":
            branches = (_Branch(site, False), _Branch(site, True))
            cond, a, b = node.args
            args = [
                self.under(site, cond),
                self.under(branches[0], a),
                self.under(branches[1], b),
            ]
            return self.apply(rule, args, site, branches)
        args = [self.under(site, a) for a in node.args]
        if rule.name == "pow":
            return self.power(args[0], args[1], site)
        if rule.build is None:
            return self.apply(rule, args, site)
        return self.expand(rule.build, args, site)

    def expand(
        self, build: Callable[..., sp.Expr], args: list[Val], site: _Site | None
    ) -> Val:
        """A builder's expansion into registry rows, run on the argument tensors.

        Inside a branch each row of the expansion gets its own site under the one that
        consumes it; the arguments, evaluated under the call's site, get the same gate
        that way (the expansions are elementwise folds or a single row)."""
        dummies = [sp.Dummy(f"a{i}", real=True) for i in range(len(args))]
        try:
            probe = build(*dummies)
        except (ValueError, TypeError):
            # the builder wants a number (norm's p): literals as their numbers
            placeholders = [
                d if a.literal is None else _literal_number(a.literal)
                for d, a in zip(dummies, args, strict=True)
            ]
            probe = build(*placeholders)
        slots = dict(zip(dummies, args, strict=True))

        def walk(expr: sp.Expr, at: _Site | None) -> Val:
            if expr in slots:
                return slots[expr]
            if expr.is_Number:
                return self.const(float(expr))
            rule = registry.rule_for(expr)
            inner = [walk(a, None if at is None else _Site(at)) for a in expr.args]
            return self.apply(rule, inner, at)

        return walk(probe, site)


def _leaves(
    values: Mapping[str, Any], names: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    leaves = {}
    for name in names:
        array = np.asarray(values[name])
        if array.dtype.kind != "f":
            array = array.astype(np.float64)
        leaves[name] = torch.tensor(array).requires_grad_(True)
    return leaves


def _fdtype(leaves: Mapping[str, torch.Tensor]) -> torch.dtype:
    dtypes = [t.dtype for t in leaves.values()]
    return reduce(torch.promote_types, dtypes) if dtypes else torch.float64


def _evaluate(
    tree: ast.Expression, leaves: Mapping[str, torch.Tensor], fdtype: torch.dtype
) -> tuple[torch.Tensor, _Evaluator]:
    ev = _Evaluator(leaves, fdtype)
    try:
        result = ev.ev(tree)
    except RuntimeError as exc:
        if any(m in str(exc) for m in _EMPTY_MESSAGES):
            raise OracleUndefined(str(exc).splitlines()[0]) from None
        raise
    (out,) = ev.numbers([Val(result.t, False)])  # the value is a number
    if result.const and out.dtype != fdtype:
        out = out.to(fdtype)
    return out, ev


def value(text: str, values: Mapping[str, Any]) -> np.ndarray:
    """The value alone (e.g. to learn the shape and dtype of grad_output)."""
    names = input_names(text)
    leaves = {
        n: t.detach() for n, t in _leaves(values, names).items()
    }  # no graph needed
    with torch.no_grad():
        out, _ = _evaluate(parse(text), leaves, _fdtype(leaves))
    return np.array(out.detach().numpy())


def value_and_grad(
    text: str, values: Mapping[str, Any], grad_output: Any = None
) -> Result:
    """Value and gradient of sum(f * grad_output) by PyTorch (see the module doc)."""
    tree = parse(text)
    names = input_names(text)
    leaves = _leaves(values, names)
    fdtype = _fdtype(leaves)
    out, ev = _evaluate(tree, leaves, fdtype)
    if grad_output is None:
        g = torch.ones_like(out)
    else:
        g = torch.tensor(np.asarray(grad_output)).to(out.dtype)
    value_scale = max((_max_abs(t) for t in ev.intermediates), default=0.0)
    value_scale = max([value_scale, *(_max_abs(t) for t in leaves.values())])

    grads: dict[str, torch.Tensor] = {}
    grad_scale = _max_abs(g)
    if out.requires_grad:
        terms: list[float] = []

        def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
            for t in (*grad_inputs, *grad_outputs):
                terms.append(_max_abs(t))

        nodes = {t.grad_fn for t in ev.intermediates if t.grad_fn is not None}
        handles = [n.register_hook(hook) for n in nodes]
        try:
            got = torch.autograd.grad(
                (out * g).sum(), list(leaves.values()), allow_unused=True
            )
        finally:
            for h in handles:
                h.remove()
        grad_scale = max([grad_scale, *terms])
        for (name, leaf), grad in zip(leaves.items(), got, strict=True):
            grads[name] = torch.zeros_like(leaf) if grad is None else grad.detach()
    else:
        grads = {n: torch.zeros_like(t).detach() for n, t in leaves.items()}

    for grad in grads.values():
        grad_scale = max(grad_scale, _max_abs(grad))
    return Result(
        value=np.array(out.detach().numpy()),
        grads={n: np.array(t.numpy()) for n, t in grads.items()},
        inputs=names,
        rows=ev.rows,
        value_scale=value_scale,
        grad_scale=grad_scale,
    )


# --- judging an answer against the oracle -------------------------------------------

BASE_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
FALLBACK_RTOL = 1e-2  # float16


def rtol_for(dtype: np.dtype, result: Result) -> float:
    """Relative tolerance: by dtype, never below what the registry says of PyTorch."""
    return max(BASE_RTOL.get(np.dtype(dtype), FALLBACK_RTOL), result.torch_rtol)


def mismatch(
    what: str,
    got: Any,
    want: np.ndarray,
    rtol: float,
    atol: float,
    nan_is_unknown: bool,
    pole: float = math.inf,
) -> str | None:
    """Why `got` is not `want` (shape, dtype, nan, inf, numbers), or None if it is.

    Finite elements agree within `atol + rtol*|want|` (atol at least rtol times the
    smallest normal number); inf must be the same inf; where
    `want` is nan, `got` must be nan too unless `nan_is_unknown` (then anything goes).
    A finite `want` beyond `pole` in magnitude also accepts the inf of its sign.
    """
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, want {want.shape}"
    if got.dtype != want.dtype:
        return f"{what}: dtype {got.dtype}, want {want.dtype}"
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    # Numbers are judged no more finely than rtol of the smallest normal number: a
    # subnormal result (a grad_output of 2e-313) has fewer bits, and PyTorch's chain
    # of products (g * a) * b rounds there differently from g * (a * b).
    if want.dtype.kind == "f":
        atol = max(atol, rtol * float(np.finfo(want.dtype).tiny))
    w_nan = np.isnan(w)
    if not nan_is_unknown and not np.array_equal(np.isnan(g), w_nan):
        return f"{what}: nan at {np.isnan(g).tolist()}, want {w_nan.tolist()}"
    w_inf = np.isinf(w)
    if not np.array_equal(g[w_inf], w[w_inf]):
        return f"{what}: {g[w_inf]} where torch gives {w[w_inf]}"
    finite = ~w_nan & ~w_inf
    with np.errstate(invalid="ignore"):
        close = np.abs(g - w) <= atol + rtol * np.abs(w)
    with np.errstate(invalid="ignore"):
        close |= (np.abs(w) >= pole) & (g == np.copysign(np.inf, w))
    bad = finite & ~close
    if bad.any():
        return (
            f"{what}: {g[bad].tolist()}, want {w[bad].tolist()} "
            f"(rtol {rtol:g}, atol {atol:g})"
        )
    return None


# Where the registry says a PyTorch reference is less accurate than float64 allows
# (torch_rtol), its finite values beyond 1/eps**2 are taken for the pole they stand for:
# torch.polygamma(1, -2.0) is 1.6e32 (3.2e14 in float32); the true trigamma(-2) is inf.
def pole_for(dtype: np.dtype, result: Result) -> float:
    if result.torch_rtol <= BASE_RTOL[np.dtype(np.float64)]:
        return math.inf
    eps = float(np.finfo(dtype).eps)
    return 1.0 / (eps * eps)


def disagreements(
    got_value: Any, got_grads: Mapping[str, Any], want: Result
) -> list[str]:
    """Everything in symgrad's answer that the oracle disagrees with."""
    rtol = rtol_for(want.value.dtype, want)
    pole = pole_for(want.value.dtype, want)
    value_atol = rtol * want.value_scale
    problems = [mismatch("value", got_value, want.value, rtol, value_atol, False, pole)]
    if set(got_grads) != set(want.grads):
        problems.append(f"gradients for {sorted(got_grads)}, want {sorted(want.grads)}")
    for name, expected in want.grads.items():
        if name in got_grads:
            problems.append(
                mismatch(
                    f"d/d{name}",
                    got_grads[name],
                    expected,
                    rtol,
                    rtol * want.grad_scale,
                    True,
                    pole,
                )
            )
    return [p for p in problems if p is not None]


# --- forward mode and second order ---------------------------------------------------


def jvp(
    text: str, values: Mapping[str, Any], tangents: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Value and tangent by `torch.func.jvp` of the string as written (the where
    gates are identities in forward mode: torch.where's own tangent selects)."""
    tree = parse(text)
    names = input_names(text)
    leaves = {n: t.detach() for n, t in _leaves(values, names).items()}
    fdtype = _fdtype(leaves)
    directions = tuple(
        torch.tensor(np.asarray(tangents[n]))
        .to(leaves[n].dtype)
        .expand(leaves[n].shape)
        for n in names
    )

    def function(*tensors: torch.Tensor) -> torch.Tensor:
        out, _ = _evaluate(tree, dict(zip(names, tensors, strict=True)), fdtype)
        return out

    value, tangent = torch.func.jvp(function, tuple(leaves.values()), directions)
    return np.array(value.detach().numpy()), np.array(tangent.detach().numpy())


def hvp(
    text: str,
    values: Mapping[str, Any],
    vectors: Mapping[str, Any],
    grad_output: Any = None,
) -> dict[str, np.ndarray]:
    """The Hessian of sum(f * grad_output) times the vectors by PyTorch's double
    backward of the string as written (the where gates are in the first backward,
    so its second selects as well); nan where PyTorch says so (no reference)."""
    tree = parse(text)
    names = input_names(text)
    leaves = _leaves(values, names)
    fdtype = _fdtype(leaves)
    out, _ = _evaluate(tree, leaves, fdtype)
    zeros = {
        n: np.zeros(t.shape, dtype=np.dtype(str(t.dtype).split(".")[1]))
        for n, t in leaves.items()
    }
    if not out.requires_grad:
        return zeros
    g = (
        torch.ones_like(out)
        if grad_output is None
        else torch.tensor(np.asarray(grad_output)).to(out.dtype)
    )
    grads = torch.autograd.grad(
        (out * g).sum(), list(leaves.values()), create_graph=True, allow_unused=True
    )
    total = None
    for (name, leaf), grad in zip(leaves.items(), grads, strict=True):
        if grad is None or not grad.requires_grad:
            continue
        v = torch.tensor(np.asarray(vectors[name])).to(leaf.dtype).expand(leaf.shape)
        term = (grad * v).sum()
        total = term if total is None else total + term
    if total is None:
        return zeros
    products = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
    return {
        n: zeros[n] if p is None else np.array(p.detach().numpy(force=True))
        for n, p in zip(leaves, products, strict=True)
    }


def hvp_forward_over_reverse(
    text: str, values: Mapping[str, Any], vectors: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """H v of sum(f) by torch.func (the jvp of the gradient): PyTorch's other second
    order, to tell where PyTorch disagrees with itself (no reference there)."""
    tree = parse(text)
    names = input_names(text)
    leaves = {n: t.detach() for n, t in _leaves(values, names).items()}
    fdtype = _fdtype(leaves)

    def total(*tensors: torch.Tensor) -> torch.Tensor:
        out, _ = _evaluate(tree, dict(zip(names, tensors, strict=True)), fdtype)
        return out.sum()

    directions = tuple(
        torch.tensor(np.asarray(vectors[n])).to(leaves[n].dtype).expand(leaves[n].shape)
        for n in names
    )
    grad = torch.func.grad(total, argnums=tuple(range(len(names))))
    _, products = torch.func.jvp(grad, tuple(leaves.values()), directions)
    return {
        n: np.array(p.detach().numpy(force=True))
        for n, p in zip(names, products, strict=True)
    }
