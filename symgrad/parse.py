"""Parse: a user's expression string into a SymPy expression, safely.

The text is read by Python's own parser (`ast.parse`, which only builds a tree and runs
nothing), and the tree is walked with a whitelist: numbers, names, the arithmetic and
comparison operators, `and`/`or`/`not`, and calls of functions from the registry.
Anything else (attributes, subscripts, lambdas, keyword arguments, strings, ...) is an
error that points at its column; the whole tree is checked before anything is built,
so the leftmost problem is the one reported. SymPy objects are built from the tree
directly; `eval`, `sympify` and `parse_expr` never see the user's string.

`^` is accepted as power (the seeds write `x^2`): it is rewritten to `**` before
Python's parser sees the text, with a map from the rewritten columns back to the user's.

Hostile input is answered quickly: exact numbers are bounded (`MAX_INT_BITS`), nesting
is bounded (`MAX_DEPTH`: the derivative and the printers recurse through it), and
functions that SymPy would evaluate exactly at great cost (factorials, harmonic
numbers) get large exact arguments as floats.
"""

from __future__ import annotations

import ast
import difflib
import math
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sympy as sp

from symgrad import functions as F
from symgrad import registry
from symgrad.errors import SymgradError

# Exact numbers (integers, numerators, denominators) may have at most this many bits;
# `9**9**9**9` would otherwise take SymPy forever and all memory.
MAX_INT_BITS = 4096
# Levels of nesting of the built expression (chains such as `a < b < c`, `a and b and c`
# and `max(a, b, c)` count one level per link; `a + b + c` and `a * b * c` are flat).
MAX_DEPTH = 100
# Parsing runs in a thread with a large stack, so that long chains such as a 10,000-term
# sum (which CPython's parser nests deeply) parse instead of hitting the recursion
# limit.
PARSE_STACK_BYTES = 512 * 1024 * 1024
PARSE_RECURSION_LIMIT = 1_000_000
# SymPy evaluates these exactly at rational arguments through factorials and harmonic
# numbers; beyond this size (numerator or denominator) the argument is made a float.
MAX_FACTORIAL_ARG = 100
_FACTORIAL_LIKE = (
    sp.gamma,
    sp.loggamma,
    sp.polygamma,
    sp.digamma,
    sp.trigamma,
    sp.factorial,
    sp.harmonic,
)
# Exact roots of integers above this size (bits) cost a primality test: floats instead.
MAX_EXACT_ROOT_BITS = 64

_COMPARE = {
    ast.Lt: F.lt,
    ast.LtE: F.le,
    ast.Gt: F.gt,
    ast.GtE: F.ge,
    ast.Eq: F.eq,
    ast.NotEq: F.ne,
}
_UNSUPPORTED_BINOP = {
    ast.FloorDiv: "'//' is not supported; write floor(a / b)",
    ast.Mod: "'%' is not supported",
    ast.MatMult: "'@' (matrix product) is not supported; write sum(a * b)",
    ast.BitAnd: "'&' is not supported; write 'and'",
    ast.BitOr: "'|' is not supported; write 'or'",
    ast.BitXor: "'^' is power here",  # unreachable: '^' is rewritten to '**'
    ast.LShift: "'<<' is not supported",
    ast.RShift: "'>>' is not supported",
}
_SUPPORTED = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name)
_SUMS = (ast.Add, ast.Sub)
_PRODUCTS = (ast.Mult, ast.Div)


@dataclass(frozen=True)
class Parsed:
    """A parsed expression: its SymPy form and its inputs in order of appearance."""

    text: str
    expr: sp.Expr
    inputs: tuple[str, ...]


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol symgrad uses for input `name` (real: values are real arrays)."""
    return sp.Symbol(name, real=True)


def parse(text: str) -> Parsed:
    """Parse `text` into a SymPy expression; raise SymgradError with a column if bad."""
    if not isinstance(text, str):
        raise SymgradError(f"expected an expression string, got {type(text).__name__}")
    if not text.strip():
        raise SymgradError("empty expression: give something like 'cos(x**2)'", text, 0)
    source, colmap = _rewrite_caret_power(text)
    tree = _python_parse(source, text, colmap)
    builder = _Builder(text, source, colmap)
    builder.validate(tree)
    expr = builder.build(tree.body)
    inputs = sorted(builder.first_column, key=builder.first_column.__getitem__)
    return Parsed(text=text, expr=expr, inputs=tuple(inputs))


def _rewrite_caret_power(text: str) -> tuple[str, list[int]]:
    """Replace `^` by `**`; return the new text and, per new column, the user's.

    Line breaks and tabs become spaces, and leading spaces are dropped (Python's parser
    would take them for an indent).
    """
    text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    out: list[str] = []
    colmap: list[int] = []
    start = len(text) - len(text.lstrip(" \f"))
    for i, ch in enumerate(text[start:], start):
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
        message = "expression is nested too deeply to parse"
        raise SymgradError(message, text, 0) from None
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
        # ast counts UTF-8 bytes; this maps a byte offset to the character's index.
        self._char_at: list[int] | None = None
        if not source.isascii():
            self._char_at = [
                i for i, ch in enumerate(source) for _ in ch.encode("utf-8")
            ]
            self._char_at.append(len(source))

    # --- columns and errors ---------------------------------------------------------
    def offset(self, byte_offset: int) -> int:
        """The index into `source` of the character at a UTF-8 byte offset."""
        if self._char_at is None:
            return byte_offset
        return self._char_at[max(0, min(byte_offset, len(self._char_at) - 1))]

    def user_column(self, offset: int) -> int:
        """The user's column of an index into `source`."""
        return self.colmap[max(0, min(offset, len(self.colmap) - 1))]

    def column(self, node: ast.AST) -> int:
        return self.user_column(self.offset(getattr(node, "col_offset", 0)))

    def fail(self, message: str, node: ast.AST) -> SymgradError:
        return SymgradError(message, self.text, self.column(node))

    def fail_after(self, message: str, left: ast.AST) -> SymgradError:
        """An error at the operator after `left` (past spaces and parentheses)."""
        col = self.offset(getattr(left, "end_col_offset", 0))
        while col < len(self.source) and self.source[col] in " ()":
            col += 1
        return SymgradError(message, self.text, self.user_column(col))

    def spelled(self, node: ast.AST) -> str:
        """The source text of a node (Python normalizes identifiers with NFKC)."""
        start = self.offset(getattr(node, "col_offset", 0))
        end = self.offset(getattr(node, "end_col_offset", 0))
        return self.source[start:end]

    # --- validation: every node, before building; the leftmost problem is reported --
    def validate(self, tree: ast.Expression) -> None:
        """Check every node against the whitelist; raise for the leftmost problem.

        Left operands are visited first, and a node starting right of the best problem
        found so far is skipped (everything inside it is further right): 20,000 unknown
        functions cost one suggestion, not 20,000.
        """
        best = self._comment_problem(tree)
        stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
        while stack:
            node, depth = stack.pop()
            if best is not None and self.column(node) > (best.column or 0):
                continue
            problem = self._problem(node, depth)
            if problem is None:
                stack.extend(reversed(list(self._children(node, depth))))
            elif best is None or (problem.column or 0) < (best.column or 0):
                best = problem
        if best is not None:
            raise best

    def _comment_problem(self, tree: ast.Expression) -> SymgradError | None:
        # After the expression only spaces and closing parentheses may follow; anything
        # else is a comment, which would silently swallow the rest of a multi-line text.
        end = self.offset(getattr(tree.body, "end_col_offset", 0))
        rest = self.source[end:]
        comment = end + len(rest) - len(rest.lstrip(" )"))
        if comment == len(self.source):
            return None
        message = "comments ('#') are not supported"
        return SymgradError(message, self.text, self.user_column(comment))

    def _children(self, node: ast.AST, depth: int) -> Iterator[tuple[ast.AST, int]]:
        """The sub-expressions of a valid node, with the depth each is built at."""
        if isinstance(node, ast.BinOp):
            # `a + b + c` is one flat Add: a left operand of the same kind is no level.
            for group in (_SUMS, _PRODUCTS):
                if isinstance(node.op, group):
                    same = isinstance(node.left, ast.BinOp) and isinstance(
                        node.left.op, group
                    )
                    yield node.left, depth + (0 if same else 1)
                    yield node.right, depth + 1
                    return
            yield node.left, depth + 1
            yield node.right, depth + 1
        elif isinstance(node, ast.UnaryOp):
            yield node.operand, depth + 1
        elif isinstance(node, ast.BoolOp):  # folded: a and b and c = (a and b) and c
            for value in node.values:
                yield value, depth + len(node.values) - 1
        elif isinstance(node, ast.Compare):  # a < b < c = (a < b) and (b < c)
            for operand in (node.left, *node.comparators):
                yield operand, depth + len(node.ops)
        elif isinstance(node, ast.Call):  # `max(a, b, c)` folds as max(max(a, b), c)
            assert isinstance(node.func, ast.Name)
            rules = registry.rules_named(node.func.id)
            folds = any(rule.arity[1] is None for rule in rules)
            extra = max(0, len(node.args) - 1) if folds else 0
            for arg in node.args:
                yield arg, depth + 1 + extra

    def _problem(self, node: ast.AST, depth: int) -> SymgradError | None:
        if depth > MAX_DEPTH:
            return self.fail(
                f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node
            )
        if isinstance(node, ast.Constant):
            return self._constant_problem(node)
        if isinstance(node, ast.IfExp):
            return self.fail(
                "'a if cond else b' is not supported; write where(cond, a, b)", node
            )
        if not isinstance(node, _SUPPORTED):
            return self.fail(_describe_unsupported(node), node)
        if isinstance(node, ast.BinOp) and type(node.op) in _UNSUPPORTED_BINOP:
            return self.fail_after(_UNSUPPORTED_BINOP[type(node.op)], node.left)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return self.fail("'~' is not supported; write 'not'", node)
        if isinstance(node, ast.Compare):
            operands = (node.left, *node.comparators)
            for op, left in zip(node.ops, operands, strict=False):
                if type(op) not in _COMPARE:
                    message = "only < <= > >= == != compare numbers here"
                    return self.fail_after(message, left)
        if isinstance(node, ast.Call):
            return self._call_problem(node)
        if isinstance(node, ast.Name):
            return self._name_problem(node)
        return None

    def _constant_problem(self, node: ast.Constant) -> SymgradError | None:
        value = node.value
        if isinstance(value, bool):
            what = "True/False are not supported; write 1 or 0"
        elif isinstance(value, complex):
            what = "complex numbers are not supported; expressions are real-valued"
        elif isinstance(value, (str, bytes)):
            what = "strings are not supported; expressions are real-valued"
        elif value is None or value is Ellipsis:
            what = f"'{self.spelled(node)}' is not a number"
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            what = (
                f"integer literal too large (more than {MAX_INT_BITS} bits); write a "
                "float such as 1e400 for a floating-point value"
            )
        else:
            return None
        return self.fail(what, node)

    def _call_problem(self, node: ast.Call) -> SymgradError | None:
        func = node.func
        if not isinstance(func, ast.Name):
            return self.fail("only named functions can be called, like sin(x)", func)
        name = func.id
        if not self.spelled(func).isascii():
            message = f"names must be ASCII identifiers, got '{self.spelled(func)}'"
            return self.fail(message, func)
        if name not in registry.SPELLINGS and not registry.rules_named(name):
            return self.fail(_unknown_function_message(name), func)
        if node.keywords:
            return self.fail(f"{name}() takes no keyword arguments", node.keywords[0])
        if not any(isinstance(arg, ast.Starred) for arg in node.args):
            message = _arity_problem(name, len(node.args))
            if message is not None:
                return self.fail(message, node)
        return None

    def _name_problem(self, node: ast.Name) -> SymgradError | None:
        name = node.id
        if not self.spelled(node).isascii():
            message = (
                f"input names must be ASCII identifiers, got '{self.spelled(node)}'"
            )
            return self.fail(message, node)
        if name in registry.CONSTANTS:
            return None
        if registry.rules_named(name) or name in registry.SPELLINGS:
            return self.fail(f"'{name}' is a function: call it, as in {name}(x)", node)
        if name.startswith("_"):
            return self.fail(
                f"names starting with '_' are reserved, got '{name}'", node
            )
        return None

    # --- the walk (only validated trees get here) -----------------------------------
    def build(self, node: ast.AST) -> sp.Expr:
        """Build left to right; long + and * chains are flattened, not recursed."""
        try:
            return self._build(node)
        except (ArithmeticError, RecursionError, MemoryError) as exc:
            # SymPy or mpmath gave up evaluating a constant: say where, not how.
            message = f"cannot evaluate this part ({type(exc).__name__}: {exc})"
            raise self.fail(message, node) from None

    def _build(self, node: ast.AST) -> sp.Expr:
        for group, combine in ((_SUMS, sp.Add), (_PRODUCTS, sp.Mul)):
            if isinstance(node, ast.BinOp) and isinstance(node.op, group):
                links: list[ast.BinOp] = []
                while isinstance(node, ast.BinOp) and isinstance(node.op, group):
                    links.append(node)
                    node = node.left
                if group is _PRODUCTS:
                    operands = self._signed_factor(node)
                else:
                    operands = [self.build(node)]
                for link in reversed(links):
                    operand = self.build(link.right)
                    if isinstance(link.op, ast.Sub):
                        operand = -operand
                    elif isinstance(link.op, ast.Div):
                        operand = _reciprocal(operand)
                    operands.append(operand)
                result = combine(*operands)
                if result.has(sp.zoo, sp.I):  # 2/0 is zoo in SymPy, inf in PyTorch
                    result = combine(*operands, evaluate=False)
                return self.checked(result, links[0])
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:  # pragma: no cover - validate() rejects these first
            raise self.fail(_describe_unsupported(node), node)
        return self.checked(method(node), node)

    def _signed_factor(self, node: ast.AST) -> list[sp.Expr]:
        """The first factor of a product, its sign apart: `-(a + b)*c` is -1*(a + b)*c.

        SymPy distributes a number over a sum (`-(a + b)` is `-a - b`), so taking the
        sign with the sum would build another expression than the one `-((a + b)*c)`
        prints as.
        """
        sign = 1
        while isinstance(node, ast.UnaryOp) and isinstance(
            node.op, (ast.USub, ast.UAdd)
        ):
            sign = -sign if isinstance(node.op, ast.USub) else sign
            node = node.operand
        factor = self.build(node)
        return [factor] if sign == 1 else [sp.S.NegativeOne, factor]

    def checked(self, expr: sp.Expr, node: ast.AST) -> sp.Expr:
        """`expr` with floats rounded to doubles; an error if a number is too big.

        SymPy's interval answers (`sin(inf)` is AccumBounds(-1, 1)) are nan, as in
        PyTorch.
        """
        if isinstance(expr, sp.AccumBounds):
            return sp.nan
        if _too_big(expr):
            raise self.fail(
                f"a number in this expression needs more than {MAX_INT_BITS} bits; "
                "write a float (such as 2.0) for a floating-point value",
                node,
            )
        return _as_double(expr)

    def _Constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, int):
            return sp.Integer(value)
        if math.isinf(value):
            return sp.oo
        return sp.Float(value)

    def _Name(self, node: ast.Name) -> sp.Expr:
        name = node.id
        if name in registry.CONSTANTS:
            return registry.CONSTANTS[name]
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
        if isinstance(node.op, ast.Not):
            return F.logical_not(operand)
        return operand  # unary '+'

    def _BinOp(self, node: ast.BinOp) -> sp.Expr:
        assert isinstance(node.op, ast.Pow)  # validate() let no other operator through
        base = self.build(node.left)
        exponent = self.build(node.right)
        if base.is_Rational and exponent.is_Rational and abs(base) != 1 and base != 0:
            # The exact result has about |exponent| times the bits of the base.
            size = max(abs(int(base.p)), int(base.q))
            times = -(-abs(int(exponent.p)) // int(exponent.q))  # ceil(|exponent|)
            if times * math.log2(size) > MAX_INT_BITS:
                digits = int(times * math.log10(size))
                raise self.fail(
                    f"exact power too large: {_operand(base)}**{_operand(exponent)} "
                    f"has about {digits:,} digits; write a float base (e.g. 9.0**...) "
                    "for a floating-point value",
                    node,
                )
            if not exponent.is_Integer and size.bit_length() > MAX_EXACT_ROOT_BITS:
                base = _to_float(base)
        if (
            (base.is_Float or exponent.is_Float)
            and base.is_Number
            and exponent.is_Number
        ):
            return _from_float(_float_pow(float(base), float(exponent)))
        if (
            base.is_number
            and exponent.is_number
            and base.is_extended_negative
            and not (exponent.is_integer or exponent.is_Float and exponent % 1 == 0)
        ):
            # A negative number to a fractional power is not real (PyTorch: nan).
            return sp.nan
        result = sp.Pow(base, exponent)
        if not F.is_real_constant(result):  # 0**-1 is zoo in SymPy, inf in PyTorch
            return sp.Pow(base, exponent, evaluate=False)
        return result

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
            right = self.build(comparator)
            masks.append(_COMPARE[type(op)](left, right))
            left = right
        result = masks[0]
        for mask in masks[1:]:  # a < b < c means (a < b) and (b < c)
            result = F.logical_and(result, mask)
        return result

    def _Call(self, node: ast.Call) -> sp.Expr:
        assert isinstance(node.func, ast.Name)  # validate() checked the call
        args = [self.build(arg) for arg in node.args]
        return self._apply(node.func.id, args, node)

    def _apply(self, name: str, args: list[sp.Expr], node: ast.Call) -> sp.Expr:
        if name in registry.SPELLINGS:
            build = registry.SPELLINGS[name][1]
            try:
                result = _build_safely(build, args)
            except ValueError as exc:
                raise self.fail(f"{name}(): {exc}", node) from None
            if not F.is_real_constant(result):  # sqrt(-2), digamma(-1)
                probe = build(sp.Dummy(real=True))
                result = probe.func(
                    *(args[0] if a.is_Dummy else a for a in probe.args), evaluate=False
                )
            return result
        for rule in registry.rules_named(name):
            low, high = rule.arity
            if low <= len(args) and (high is None or len(args) <= high):
                try:
                    result = _build_safely(rule.build or rule.cls, args)
                except ValueError as exc:
                    raise self.fail(f"{name}(): {exc}", node) from None
                except ArithmeticError:
                    if rule.build is not None:
                        raise
                    # mpmath overflows on some extreme floats (erfc(1e300)): keep the
                    # call unevaluated.
                    return rule.cls(*args, evaluate=False)
                if rule.build is None and not F.is_real_constant(result):
                    # log(-1), lgamma(-1): SymPy's complex or undirected value is not
                    # PyTorch's (nan, inf); the generated code computes it instead.
                    return rule.cls(*args, evaluate=False)
                if rule.build is None and not _in_language(result):
                    # SymPy evaluated it into functions symgrad has no row for
                    # (atan2(y, -inf) is 2*pi*Heaviside(y) - pi): keep the call.
                    return rule.cls(*args, evaluate=False)
                return result
        raise self.fail(_arity_problem(name, len(args)) or "unreachable", node)


def _in_language(expr: sp.Expr) -> bool:
    """Whether every function in `expr` has a row in the registry."""
    return all(type(f) in registry.BY_CLASS for f in expr.atoms(sp.Function))


def _arity_problem(name: str, count: int) -> str | None:
    """Why `name` cannot take `count` arguments, or None if it can."""
    if name in registry.SPELLINGS:
        arities = [registry.SPELLINGS[name][0]]
    else:
        arities = [rule.arity for rule in registry.rules_named(name)]
    for low, high in arities:
        if low <= count and (high is None or count <= high):
            return None
    expected = " or ".join(_arity_words(low, high) for low, high in sorted(arities))
    signatures = sorted({rule.signature for rule in registry.rules_named(name)})
    hint = f" ({', '.join(signatures)})" if signatures else ""
    return f"{name}() takes {expected}, got {count}{hint}"


def _build_safely(build: Callable[..., sp.Expr], args: list[sp.Expr]) -> sp.Expr:
    """`build(*args)`, with large exact arguments as floats where exactness is costly.

    SymPy evaluates gamma-like functions at rationals through factorials and harmonic
    numbers (`digamma(10**6)` would take hours), and roots of large integers through
    primality tests. Which class a spelling builds is learned from a symbolic probe.
    """
    large = [a.is_Rational and max(abs(a.p), a.q) > MAX_FACTORIAL_ARG for a in args]
    if not any(large):
        return build(*args)
    try:
        probe = build(*(sp.Dummy(real=True) for _ in args))
    except Exception:  # e.g. norm(x, p) wants a number for p: no costly class then
        return build(*args)
    if isinstance(probe, _FACTORIAL_LIKE):
        limit = MAX_FACTORIAL_ARG
    elif probe.is_Pow and not probe.exp.is_Integer:
        limit = 2**MAX_EXACT_ROOT_BITS
    else:
        return build(*args)
    floats = [
        _to_float(a) if big and max(abs(a.p), a.q) > limit else a
        for a, big in zip(args, large, strict=True)
    ]
    return build(*floats)


def _too_big(expr: sp.Expr) -> bool:
    """Whether `expr`, its arguments or theirs hold an exact number over the limit."""
    level = [expr]
    for _ in range(3):
        for item in level:
            if (
                item.is_Rational
                and max(abs(item.p), item.q).bit_length() > MAX_INT_BITS
            ):
                return True
        level = [arg for item in level for arg in item.args]
    return False


def _as_double(expr: sp.Expr) -> sp.Expr:
    """Floats (alone or as the coefficient of a sum or product) rounded to doubles.

    SymPy's floats have an unbounded exponent: `1e308 * 10` would stay finite, where
    PyTorch (and symgrad's generated code) give inf.
    """
    if expr.is_Float:
        return _from_float(float(expr))
    if expr.is_Add or expr.is_Mul:
        coeff, rest = expr.as_coeff_Add() if expr.is_Add else expr.as_coeff_Mul()
        if coeff.is_Float:
            double = _from_float(float(coeff))
            if double != coeff:
                return expr.func(double, rest)
    return expr


def _from_float(value: float) -> sp.Expr:
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if math.isnan(value):
        return sp.nan
    return sp.Float(value)


def _to_float(number: sp.Rational) -> sp.Expr:
    try:
        return _from_float(int(number.p) / int(number.q))
    except OverflowError:
        return sp.oo if number > 0 else -sp.oo


def _operand(number: sp.Rational) -> str:
    return str(number) if number.is_Integer and number >= 0 else f"({number})"


def _reciprocal(expr: sp.Expr) -> sp.Expr:
    result = sp.Pow(expr, -1)
    if not F.is_real_constant(result):  # 1/0: zoo in SymPy, inf in PyTorch
        return sp.Pow(expr, -1, evaluate=False)
    return result


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
    return (
        f"unknown function '{name}'{hint} (`symgrad functions` lists them; a new "
        "one is a row in symgrad/registry.py)"
    )


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
    what = kinds.get(type(node))
    return what or f"{type(node).__name__} is not allowed in an expression"
