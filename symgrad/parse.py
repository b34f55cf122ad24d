"""Parse: a user's expression string into a SymPy expression, safely.

The text is read by Python's own parser (`ast.parse`, which only builds a tree and runs
nothing), and the tree is walked with a whitelist: numbers, names, the arithmetic and
comparison operators, `and`/`or`/`not`, and calls of functions from the registry. Anything
else (attributes, subscripts, lambdas, keyword arguments, strings, ...) is an error that
points at its column. SymPy objects are built from the tree directly; `eval`, `sympify` and
`parse_expr` never see the user's string.

`^` is accepted as power (the seeds write `x^2`): it is rewritten to `**` before Python's
parser sees the text, with a map from the rewritten columns back to the user's.
"""

from __future__ import annotations

import ast
import difflib
import math
import sys
import threading
from dataclasses import dataclass

import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.errors import SymgradError

# Integer powers are evaluated exactly only while the result stays this small (bits);
# `9**9**9**9` would otherwise take SymPy forever and all memory.
MAX_INT_BITS = 4096
# Parsing runs in a thread with a large stack, so that long chains such as a 10,000-term
# sum (which CPython's parser nests deeply) parse instead of hitting the recursion limit.
PARSE_STACK_BYTES = 512 * 1024 * 1024
PARSE_RECURSION_LIMIT = 1_000_000

_COMPARE = {
    ast.Lt: F.lt, ast.LtE: F.le, ast.Gt: F.gt, ast.GtE: F.ge, ast.Eq: F.eq, ast.NotEq: F.ne,
}
_UNSUPPORTED_BINOP = {
    ast.FloorDiv: "'//' is not supported; write floor(a / b)",
    ast.Mod: "'%' is not supported",
    ast.MatMult: "'@' (matrix product) is not supported; write sum(a * b)",
    ast.BitAnd: "'&' is not supported; write 'and'",
    ast.BitOr: "'|' is not supported; write 'or'",
    ast.LShift: "'<<' is not supported",
    ast.RShift: "'>>' is not supported",
}


_OPERATOR_NODES = (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context,
                   ast.keyword)


@dataclass(frozen=True)
class Parsed:
    """A parsed expression: the SymPy form and its inputs in order of first appearance."""

    text: str
    expr: sp.Expr
    inputs: tuple[str, ...]


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol symgrad uses for input `name` (real: values are real arrays)."""
    return sp.Symbol(name, real=True)


def parse(text: str) -> Parsed:
    """Parse `text` into a SymPy expression; raise SymgradError with a column on bad input."""
    if not isinstance(text, str):
        raise SymgradError(f"expected an expression string, got {type(text).__name__}")
    if not text.strip():
        raise SymgradError("empty expression: give something like 'cos(x**2)'")
    source, colmap = _rewrite_caret_power(text)
    tree = _python_parse(source, text, colmap)
    builder = _Builder(text, source, colmap)
    builder.validate(tree)
    expr = builder.build(tree.body)
    inputs = sorted(builder.first_column, key=builder.first_column.__getitem__)
    return Parsed(text=text, expr=expr, inputs=tuple(inputs))


def _rewrite_caret_power(text: str) -> tuple[str, list[int]]:
    """Replace `^` by `**`; return the new text and, per new column, the user's column."""
    text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    out: list[str] = []
    colmap: list[int] = []
    for i, ch in enumerate(text):
        if ch == "^":
            out.append("**")
            colmap.extend((i, i))
        else:
            out.append(ch)
            colmap.append(i)
    colmap.append(len(text))
    return "".join(out), colmap


def _python_parse(source: str, text: str, colmap: list[int]) -> ast.Expression:
    result: dict[str, object] = {}

    def target() -> None:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, PARSE_RECURSION_LIMIT))
        try:
            result["tree"] = ast.parse(source, mode="eval")
        except BaseException as exc:  # reported below, in the caller's thread
            result["error"] = exc
        finally:
            sys.setrecursionlimit(old)

    old_size = threading.stack_size()
    threading.stack_size(PARSE_STACK_BYTES)
    try:
        thread = threading.Thread(target=target, name="symgrad-parse")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_size)
    error = result.get("error")
    if error is None:
        return result["tree"]  # type: ignore[return-value]
    if isinstance(error, SyntaxError):
        column = _syntax_error_column(error, source, colmap)
        message = (error.msg or "invalid syntax").split(" (")[0]
        if not error.offset and message == "invalid syntax":
            message, column = "the expression ends too early", len(text.rstrip())
        if "nested parentheses" in message:
            message = "too many nested parentheses (at most 200 levels)"
        elif "Exceeds the limit" in message:
            message = "number literal too long"
        raise SymgradError(f"syntax error: {message}", text, column) from None
    if isinstance(error, (RecursionError, MemoryError)):
        raise SymgradError("expression is nested too deeply to parse", text, 0) from None
    raise SymgradError(f"cannot parse the expression: {error}", text, 0) from None


def _syntax_error_column(error: SyntaxError, source: str, colmap: list[int]) -> int:
    offset = (error.offset or 1) - 1
    if error.lineno and error.lineno > 1:
        offset = len(source)
    # SyntaxError offsets count characters of the (single-line) source.
    return colmap[max(0, min(offset, len(colmap) - 1))]


class _Builder:
    """Walks a Python AST (whitelisted nodes only) and builds the SymPy expression."""

    def __init__(self, text: str, source: str, colmap: list[int]):
        self.text = text
        self.source = source
        self.colmap = colmap
        self.first_column: dict[str, int] = {}
        self._symbols: dict[str, sp.Symbol] = {}
        self._ascii = source.isascii()

    # --- errors ---------------------------------------------------------------------
    def column(self, node: ast.AST) -> int:
        offset = getattr(node, "col_offset", 0)
        if not self._ascii:  # ast counts UTF-8 bytes; map back to characters
            offset = len(self.source.encode("utf-8")[:offset].decode("utf-8", "ignore"))
        return self.colmap[max(0, min(offset, len(self.colmap) - 1))]

    def fail(self, message: str, node: ast.AST) -> SymgradError:
        return SymgradError(message, self.text, self.column(node))

    # --- validation: report the leftmost problem first ------------------------------
    def validate(self, tree: ast.Expression) -> None:
        """Check every node against the whitelist; raise for the leftmost problem."""
        problems: list[SymgradError] = []
        stack: list[ast.AST] = [tree.body]
        while stack:
            node = stack.pop()
            problem = self._problem(node)
            if problem is not None:
                problems.append(problem)
                continue
            stack.extend(ast.iter_child_nodes(node))
        if problems:
            raise min(problems, key=lambda p: p.column or 0)

    def _problem(self, node: ast.AST) -> SymgradError | None:
        if isinstance(node, _OPERATOR_NODES):
            return None
        if isinstance(node, ast.BinOp) and type(node.op) in _UNSUPPORTED_BINOP:
            try:
                self._raise_at_operator(_UNSUPPORTED_BINOP[type(node.op)], node)
            except SymgradError as exc:
                return exc
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in registry.SPELLINGS and not registry.rules_named(name):
                return self.fail(_unknown_function_message(name), node.func)
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call,
                             ast.Name, ast.Constant, ast.IfExp)):
            return None
        return self.fail(_describe_unsupported(node), node)

    # --- the walk -------------------------------------------------------------------
    def build(self, node: ast.AST) -> sp.Expr:
        """Build iteratively: long operator chains are flattened, never recursed into."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            terms = []
            while isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
                right = self.build(node.right)
                terms.append(-right if isinstance(node.op, ast.Sub) else right)
                node = node.left
            terms.append(self.build(node))
            return sp.Add(*reversed(terms))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            factors = []
            while isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
                right = self.build(node.right)
                factors.append(_reciprocal(right) if isinstance(node.op, ast.Div)
                               else right)
                node = node.left
            factors.append(self.build(node))
            return sp.Mul(*reversed(factors))
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(_describe_unsupported(node), node)
        return method(node)

    def _Constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = "complex numbers" if isinstance(value, complex) else (
                "True/False" if isinstance(value, bool) else "strings")
            raise self.fail(f"{what} are not supported; expressions are real-valued",
                            node)
        if isinstance(value, int):
            return sp.Integer(value)
        if math.isinf(value):
            return sp.oo
        return sp.Float(value)

    def _Name(self, node: ast.Name) -> sp.Expr:
        name = node.id
        if name in registry.CONSTANTS:
            return registry.CONSTANTS[name]
        if registry.rules_named(name) or name in registry.SPELLINGS:
            raise self.fail(f"'{name}' is a function: call it, as in {name}(x)", node)
        if not name.isascii():
            raise self.fail(f"input names must be ASCII identifiers, got '{name}'", node)
        if name.startswith("_"):
            raise self.fail(f"names starting with '_' are reserved, got '{name}'", node)
        column = self.column(node)
        if name not in self._symbols:
            self._symbols[name] = symbol(name)
            self.first_column[name] = column
        else:
            self.first_column[name] = min(self.first_column[name], column)
        return self._symbols[name]

    def _UnaryOp(self, node: ast.UnaryOp) -> sp.Expr:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return F.logical_not(operand)
        raise self.fail("'~' is not supported; write 'not'", node)

    def _BinOp(self, node: ast.BinOp) -> sp.Expr:
        if isinstance(node.op, ast.Pow):
            return self._power(node)
        if isinstance(node.op, ast.BitXor):  # only reachable through a rewritten '**'
            raise self.fail("'^' is power here", node)
        message = _UNSUPPORTED_BINOP.get(type(node.op), "unsupported operator")
        return self._raise_at_operator(message, node)

    def _raise_at_operator(self, message: str, node: ast.BinOp) -> sp.Expr:
        # Point at the operator: the first non-space after the left operand.
        end = getattr(node.left, "end_col_offset", node.col_offset)
        col = end
        while col < len(self.source) and self.source[col] in " ()":
            col += 1
        raise SymgradError(message, self.text, self.colmap[min(col, len(self.colmap) - 1)])

    def _power(self, node: ast.BinOp) -> sp.Expr:
        base = self.build(node.left)
        exponent = self.build(node.right)
        if base.is_Integer and exponent.is_Integer and exponent > 0:
            bits = int(exponent) * max(1, int(abs(base)).bit_length())
            if bits > MAX_INT_BITS:
                digits = int(int(exponent) * math.log10(max(2, abs(int(base)))))
                raise self.fail(
                    f"integer power too large: {base}**{exponent} has about {digits:,} "
                    "digits; write a float base (e.g. 9.0**...) for a floating-point "
                    "value",
                    node,
                )
        if base.is_Number and exponent.is_Number and base.is_negative and \
                not exponent.is_Integer:
            # A negative number to a fractional power is not real (PyTorch: nan).
            return sp.nan
        if (base.is_Float or exponent.is_Float) and base.is_Number and exponent.is_Number:
            value = _float_pow(float(base), float(exponent))
            return sp.oo if math.isinf(value) else sp.Float(value)
        return sp.Pow(base, exponent)

    def _BoolOp(self, node: ast.BoolOp) -> sp.Expr:
        cls = F.logical_and if isinstance(node.op, ast.And) else F.logical_or
        values = [self.build(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = cls(result, value)
        return result

    def _Compare(self, node: ast.Compare) -> sp.Expr:
        left = self.build(node.left)
        masks = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            cls = _COMPARE.get(type(op))
            if cls is None:
                raise self.fail("only < <= > >= == != compare numbers here", comparator)
            right = self.build(comparator)
            masks.append(cls(left, right))
            left = right
        result = masks[0]
        for mask in masks[1:]:  # a < b < c means (a < b) and (b < c)
            result = F.logical_and(result, mask)
        return result

    def _IfExp(self, node: ast.IfExp) -> sp.Expr:
        raise self.fail("'a if cond else b' is not supported; write where(cond, a, b)",
                        node)

    def _Call(self, node: ast.Call) -> sp.Expr:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail("only named functions can be called, like sin(x)", func)
        name = func.id
        if node.keywords:
            keyword = node.keywords[0]
            raise self.fail(f"{name}() takes no keyword arguments", keyword.value
                            if keyword.arg is None else keyword)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail("'*' unpacking is not supported", arg)
        args = [self.build(arg) for arg in node.args]
        return self._apply(name, args, node)

    def _apply(self, name: str, args: list[sp.Expr], node: ast.Call) -> sp.Expr:
        if name in registry.SPELLINGS:
            (low, high), build, _ = registry.SPELLINGS[name]
            self._check_arity(name, len(args), [(low, high)], node)
            return build(*args)
        rules = registry.rules_named(name)
        if not rules:
            raise self.fail(_unknown_function_message(name), node.func)
        arities = [rule.arity for rule in rules]
        for rule in rules:
            low, high = rule.arity
            if low <= len(args) and (high is None or len(args) <= high):
                build = rule.build or rule.cls
                try:
                    return build(*args)
                except ValueError as exc:
                    raise self.fail(f"{name}(): {exc}", node) from None
        self._check_arity(name, len(args), arities, node)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_arity(self, name: str, count: int, arities: list[tuple[int, int | None]],
                     node: ast.Call) -> None:
        for low, high in arities:
            if low <= count and (high is None or count <= high):
                return
        expected = " or ".join(_arity_words(low, high) for low, high in sorted(arities))
        signatures = sorted({rule.signature for rule in registry.rules_named(name)})
        hint = f" ({', '.join(signatures)})" if signatures else ""
        raise self.fail(
            f"{name}() takes {expected}, got {count}{hint}", node)


def _reciprocal(expr: sp.Expr) -> sp.Expr:
    return sp.Pow(expr, -1)


def _float_pow(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError):
        return math.nan if base < 0 else math.inf


def _arity_words(low: int, high: int | None) -> str:
    if high is None:
        return f"{low} or more arguments"
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"


def _unknown_function_message(name: str) -> str:
    names = registry.function_names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (f"unknown function '{name}'{hint} (`symgrad functions` lists them; a new "
            "one is a row in symgrad/registry.py)")


def _describe_unsupported(node: ast.AST) -> str:
    kinds = {
        ast.Attribute: "attribute access ('a.b') is not allowed",
        ast.Subscript: "subscripts ('a[i]') are not allowed",
        ast.Lambda: "lambdas are not allowed",
        ast.NamedExpr: "assignments (':=') are not allowed",
        ast.List: "lists are not allowed in expressions; give array values with --at",
        ast.Tuple: "tuples are not allowed",
        ast.Dict: "dicts are not allowed",
        ast.Set: "sets are not allowed",
        ast.ListComp: "comprehensions are not allowed",
        ast.GeneratorExp: "generator expressions are not allowed",
        ast.SetComp: "comprehensions are not allowed",
        ast.DictComp: "comprehensions are not allowed",
        ast.JoinedStr: "strings are not allowed",
        ast.Await: "'await' is not allowed",
        ast.Yield: "'yield' is not allowed",
        ast.YieldFrom: "'yield' is not allowed",
        ast.Starred: "'*' unpacking is not allowed",
        ast.Slice: "slices are not allowed",
    }
    return kinds.get(type(node), f"{type(node).__name__} is not allowed in an expression")
