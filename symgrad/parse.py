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
import contextlib
import difflib
import keyword
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from symgrad import registry
from symgrad.errors import SymgradError
from symgrad.graph import Graph, Node

# Integer literals may have at most this many bits (larger ones are refused before
# Python converts them; up to it, an integer too large for a float is inf, as a float
# literal such as 1e400 is).
MAX_INT_BITS = 4096
# Levels of nesting (chains such as `a < b < c`, `a and b and c` and `max(a, b, c)`
# count one level per link; `a + b + c` and `a * b * c` are flat). Formulas are shown
# through SymPy, whose printers recurse through the nesting.
MAX_DEPTH = 100
# A top-level sum of more terms than this is parsed term by term: Python's parser
# nests `a + b + c ...` one level per term and stops near 1,000 levels.
CHUNK_TERMS = 400
# Names an input may not have: they are the generated module's own.
RESERVED_INPUTS = frozenset(
    {
        "np",
        "math",
        "grad_output",
        "forward",
        "backward",
        "value_and_grad",
        "jvp",
        "hvp",
        "hessian",
        "hessian_matrix",
        "hessian_sparse",
        "HESSIAN_SPARSITY",
        "primals",
        "tangents",
        "vectors",
        "WRT",
        "threads",
        "INPUTS",
        "EXPRESSION",
        "CONVENTION",
    }
)

# Python's operators as the user spells them (ast class -> text); which registry row
# each is, the registry says (`Rule.operator`). The oracles read the same table.
PYTHON_OPERATORS: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.USub: "-",
    ast.Not: "not",
    ast.And: "and",
    ast.Or: "or",
}


def _row(op: ast.AST, operands: int) -> str:
    """The registry row of a Python operator with this many operands."""
    return registry.BY_OPERATOR[(PYTHON_OPERATORS[type(op)], operands)].name


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
_SUPPORTED = (
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Subscript,
)
_SUMS = (ast.Add, ast.Sub)
_PRODUCTS = (ast.Mult, ast.Div)


@dataclass(frozen=True)
class Parsed:
    """A parsed expression: its graph, output node and inputs in order of appearance."""

    text: str
    graph: Graph
    output: Node
    inputs: tuple[str, ...]

    @cached_property
    def expr(self) -> sp.Expr:
        """The expression as SymPy (for display: formulas, LaTeX, simplification)."""
        return to_sympy(self.output)


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol symgrad uses for input `name` (real: values are real arrays)."""
    return sp.Symbol(name, real=True)


def to_sympy(output: Node) -> sp.Expr:
    """The SymPy form of a graph node, built from the registry rows (for display).

    A chain of sums `a + b - c + ...` becomes one SymPy Add of all its terms (adding
    them one at a time would copy the growing sum each time: quadratic)."""
    from symgrad.graph import ancestors

    nodes = ancestors([output])
    uses: dict[int, int] = {}
    chained: set[int] = set()  # sums used once, as the left operand of a sum
    for node in nodes:
        for position, arg in enumerate(node.args):
            uses[arg.id] = uses.get(arg.id, 0) + 1
            if node.op in _SUMS_OPS and position == 0 and arg.op in _SUMS_OPS:
                chained.add(arg.id)
    built: dict[int, sp.Expr] = {}
    pending: dict[int, list[sp.Expr]] = {}
    for node in nodes:
        if node.op == "input":
            built[node.id] = symbol(node.name or "")
        elif node.op == "const":
            built[node.id] = (
                node.symbolic
                if node.symbolic is not None
                else _sympy_number(node.value)  # type: ignore[arg-type]
            )
        elif node.op in _SUMS_OPS:
            left, right = node.args
            terms = pending.pop(left.id, None)
            if terms is None:
                terms = [built[left.id]]
            term = built[right.id]
            terms.append(term if node.op == "add" else _negated(term))
            if node.id in chained and uses.get(node.id) == 1:
                pending[node.id] = terms
            else:
                built[node.id] = _sum(terms)
        else:
            built[node.id] = _sympy_call(node, [built[a.id] for a in node.args])
    return built[output.id]


_SUMS_OPS = frozenset({"add", "sub"})


def _sum(terms: list[sp.Expr]) -> sp.Expr:
    """The sum of the terms; as written where SymPy would cancel the inputs away
    (x - x + 3 stays that, not 3: its value has x's shape and domain)."""
    total = sp.Add(*terms)
    if (
        total.is_finite
        and not total.free_symbols
        and any(t.free_symbols for t in terms)
    ):
        return sp.Add(*sorted(terms, key=sp.default_sort_key), evaluate=False)
    return total


def _negated(term: sp.Expr) -> sp.Expr:
    """-term, a sum kept whole (x - (y + z) as written, not x - y - z)."""
    return sp.Mul(sp.S.NegativeOne, term, evaluate=not term.is_Add)


def _sympy_call(node: Node, args: list[sp.Expr]) -> sp.Expr:
    rule = registry.BY_NAME[node.op]
    try:
        form = rule.to_sympy(*args)
    except (ArithmeticError, ValueError, TypeError):
        return sp.nan
    if rule.cls is None or type(form) is rule.cls or form.is_Number:
        return form  # as asked: nothing new inside
    if rule.cls not in (sp.Add, sp.Mul) and any(a.has(form) for a in args):
        # SymPy cancelled the call into a part of its argument (exp(log(x)) and
        # sqrt(x)**2 are x for SymPy, nan at -1 here): show it as written
        return rule.cls(*args, evaluate=False)
    if form.has(sp.zoo, sp.I, sp.AccumBounds) or any(
        type(f) not in registry.BY_CLASS for f in form.atoms(sp.Function)
    ):  # SymPy evaluated into something symgrad does not write: keep the call
        return rule.cls(*args, evaluate=False)
    return form


def _sympy_number(value: float | bool | None) -> sp.Expr:
    if value is None:  # a slice's missing bound (printed as nothing: x[1:])
        return registry.NO_BOUND
    if type(value) is bool:
        return sp.S.One if value else sp.S.Zero
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value.is_integer() and abs(value) < 2**53:
        return sp.Integer(int(value))
    return sp.Float(value)


def parse(text: str) -> Parsed:
    """Parse `text` into an expression graph; SymgradError with a column if bad."""
    if not isinstance(text, str):
        raise SymgradError(f"expected an expression string, got {type(text).__name__}")
    if not text.strip():
        raise SymgradError("empty expression: give something like 'cos(x**2)'", text, 0)
    source, colmap = _rewrite_caret_power(text)
    pieces = _pieces(source)
    if pieces is not None:  # a long flat sum or product: piece by piece if it can be
        done = _parse_in_pieces(_Builder(text, source, colmap), *pieces)
        if done is not None:
            return done
    tree = _python_parse(source, text, colmap, pieces)
    builder = _Builder(text, source, colmap)
    builder.validate(tree)
    inputs = builder.inputs()
    builder.graph.symbolic_constants = True
    output = builder.build(tree.body)
    return _parsed(builder, output, inputs)


def _parsed(builder: _Builder, output: Node, inputs: list[str]) -> Parsed:
    builder.graph.symbolic_constants = False
    if output.is_mask:  # a mask's value is a number: 0/1 in the inputs' dtype
        output = builder.graph.as_number(output)
    return Parsed(
        text=builder.text, graph=builder.graph, output=output, inputs=tuple(inputs)
    )


def _rewrite_caret_power(text: str) -> tuple[str, list[int]]:
    """Replace `^` by `**`; return the new text and, per new column, the user's.

    Line breaks and tabs become spaces, and leading spaces are dropped (Python's parser
    would take them for an indent).
    """
    text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    start = len(text) - len(text.lstrip(" \f"))
    if "^" not in text:  # (the loop below, without one: each column is the user's)
        return text[start:], list(range(start, len(text) + 1))
    out: list[str] = []
    colmap: list[int] = []
    for i, ch in enumerate(text[start:], start):
        if ch == "^":
            out.append("**")
            colmap.extend((i, i))
        else:
            out.append(ch)
            colmap.append(i)
    colmap.append(len(text))
    return "".join(out), colmap


def _python_parse(
    source: str,
    text: str,
    colmap: list[int],
    pieces: tuple[str, list[tuple[int, int, str | None]]] | None = None,
) -> ast.Expression:
    """Python's parser on `source`; a long top-level sum (`_pieces`) is parsed term
    by term."""
    with _python_errors(source, text, colmap):
        if pieces is not None:
            return _joined(source, *pieces)
        return ast.parse(source, mode="eval")


@contextlib.contextmanager
def _python_errors(source: str, text: str, colmap: list[int]) -> Iterator[None]:
    """Python's parser's errors (on `source` or a piece of it) as SymgradErrors."""
    try:
        yield
    except SyntaxError as error:
        column = _syntax_error_column(error, source, colmap)
        message = (error.msg or "invalid syntax").split(" (")[0]
        if not error.offset and message == "invalid syntax":
            message, column = "the expression ends too early", len(text.rstrip())
        if "nested parentheses" in message:
            message = "too many nested parentheses (at most 200 levels)"
        elif "Exceeds the limit" in message:
            message = "number literal too long"
        raise SymgradError(f"syntax error: {message}", text, column) from None
    except (RecursionError, MemoryError):
        message = "expression is nested too deeply to parse"
        raise SymgradError(message, text, 0) from None
    except ValueError as error:  # e.g. a null character
        raise SymgradError(f"cannot parse the expression: {error}", text, 0) from None


_GROUPS = {"sum": (ast.Add, ast.Sub), "product": (ast.Mult, ast.Div)}
_JOINING = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}


def _pieces(source: str) -> tuple[str, list[tuple[int, int, str | None]]] | None:
    """A long flat sum (`t1 + t2 - t3 ...`) or product (`f1 * f2 / f3 ...`), to be
    parsed in pieces of CHUNK_TERMS terms and joined as Python would have nested it:
    its group and each piece's (start, end, the operator before it); else None.

    Only when every operator at the top level (outside brackets) is of one group:
    binary + and - (with * / ** inside terms), or * and / (with ** inside factors).
    Comparisons and `and`/`or` bind more loosely, so splitting there would be wrong.
    """
    if len(source) < 2 * CHUNK_TERMS:
        return None
    cuts = _top_level_operators(source)
    if cuts is None:
        return None
    group = "sum" if cuts["sum"] else "product"
    chosen = cuts[group]
    if len(chosen) < CHUNK_TERMS:
        return None
    if group == "product" and any(op == "**" for _, op in chosen):
        return None
    starts = [0] + [c for c, _ in chosen[CHUNK_TERMS - 1 :: CHUNK_TERMS]]
    bounds: list[tuple[int, int, str | None]] = []
    for start, end in zip(starts, starts[1:] + [len(source)], strict=True):
        bounds.append((start + 1, end, source[start]) if start else (0, end, None))
    return group, bounds


def _piece(source: str, start: int, end: int) -> ast.expr:
    """The tree of `source[start:end]`, every node with its column in `source`."""
    # padded so that Python's parser gives every node its column in `source`
    # (parentheses are not part of a node's position)
    padding = len(source[:start].encode("utf-8")) - 1
    piece = "(" + " " * padding + source[start:end] + ")" if start else source[:end]
    return ast.parse(piece, mode="eval").body


def _graft(result: ast.expr, tree: ast.expr, op_before: str, group: str) -> ast.expr:
    """`result` joined to the piece `tree` as Python nests it: the piece's leftmost
    operand becomes `result <op_before> operand` (columns shifted as a whole parse
    gives them)."""
    parent, first = None, tree
    kinds = _GROUPS[group]
    while isinstance(first, ast.BinOp) and isinstance(first.op, kinds):
        parent, first = first, first.left
    joined = ast.BinOp(
        left=result,
        op=_JOINING[op_before](),
        right=first,
        lineno=1,
        col_offset=result.col_offset,
        end_lineno=1,
        end_col_offset=first.end_col_offset,
    )
    if parent is None:
        result = joined
    else:
        parent.left = joined
        result = tree
    node = result
    while isinstance(node, ast.BinOp) and node is not joined:
        node.col_offset = joined.col_offset
        node = node.left
    return result


def _joined(
    source: str, group: str, bounds: list[tuple[int, int, str | None]]
) -> ast.Expression:
    """The tree of a long flat sum or product (`_pieces`), its pieces joined."""
    result: ast.expr | None = None
    for start, end, op_before in bounds:
        tree = _piece(source, start, end)
        result = tree if result is None else _graft(result, tree, op_before, group)  # type: ignore[arg-type]
    assert result is not None
    return ast.Expression(body=result)


def _parse_in_pieces(
    builder: _Builder, group: str, bounds: list[tuple[int, int, str | None]]
) -> Parsed | None:
    """A long flat sum or product (`_pieces`) parsed, checked and built one piece at
    a time, so that the tree of the whole (hundreds of thousands of objects for the
    garbage collector to traverse at 10,000 terms) is never held; None when the
    inputs in order, guessed from the text first (the graph's first nodes), are
    not the ones the check finds (then `parse` takes the whole tree).

    Everything else is as with the whole tree: the same checks at the same depths,
    left to right (a piece that is one term is the join's right operand: one level
    down), a syntax error anywhere before any other problem, a problem the check
    finds before one found while building, and the same nodes made in the same
    order."""
    source, text, colmap = builder.source, builder.text, builder.colmap
    guessed = _guess_inputs(source)
    for name in guessed:
        builder.graph.input(name)
    kinds = _GROUPS[group]
    best: SymgradError | None = None
    failed: Exception | None = None  # raised while building, after the checks
    result: Node | None = None
    end_offset = 0
    for start, end, op_before in bounds:
        with _python_errors(source, text, colmap):
            tree = _piece(source, start, end)
        end_offset = getattr(tree, "end_col_offset", 0)
        spine = isinstance(tree, ast.BinOp) and isinstance(tree.op, kinds)
        best = builder.check(tree, 1 if spine else 2, best)
        if best is not None or failed is not None:
            continue  # (still parsed: a syntax error further on comes first)
        builder.graph.symbolic_constants = True
        try:
            if result is None:
                result = builder.build(tree)
            else:
                assert op_before is not None
                # the pieces so far stand in as their node (the first piece's root:
                # column 0)
                placeholder = ast.Name(id="_", ctx=ast.Load(), col_offset=0)
                root = _graft(placeholder, tree, op_before, group)
                result = builder.build(root, {id(placeholder): result})
        except Exception as error:  # noqa: BLE001 - raised below, after the checks
            failed = error
        builder.graph.symbolic_constants = False
    best = best or builder.comment_problem(end_offset)
    if best is not None:
        raise best
    if failed is not None:
        raise failed
    inputs = sorted(builder.first_column, key=builder.first_column.__getitem__)
    if inputs != guessed or [n.name for n in builder.graph.inputs()] != guessed:
        return None
    assert result is not None
    return _parsed(builder, result, inputs)


_NAMES = re.compile(r"(?P<number>\.?\d[\w.]*)|(?P<name>[^\W\d]\w*)(?P<call>[ \f]*\()?")


def _guess_inputs(source: str) -> list[str]:
    """The names in `source` that look like inputs (not numbers, calls, keywords or
    constants), in order of first appearance: a guess, checked after parsing."""
    seen: dict[str, None] = {}
    for match in _NAMES.finditer(source):
        name = match["name"]
        if (
            name is not None
            and match["call"] is None
            and name not in seen
            and name not in registry.CONSTANTS
            and not keyword.iskeyword(name)
        ):
            seen[name] = None
    return list(seen)


_EXPONENT = re.compile(r"(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)[eE]$")


def _top_level_operators(source: str) -> dict[str, list[tuple[int, str]]] | None:
    """Where the binary + - and * / outside brackets are, or None if anything else
    (a comparison, `and`, `**` at the top of a product) is there."""
    cuts: dict[str, list[tuple[int, str]]] = {"sum": [], "product": []}
    depth = 0
    last = ""  # the last character outside brackets that is not a space
    start = 0  # where the text outside brackets since the last bracket starts
    # only the brackets are visited one by one; the text between them when it is
    # outside brackets, character by character (`_top_level_text`)
    for bracket in _BRACKETS.finditer(source):
        i = bracket.start()
        if depth == 0:
            last = _top_level_text(source, start, i, last, cuts)
            if last is None:
                return None
        if source[i] in "([{":
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return None
            if depth == 0:
                last = source[i]
        start = i + 1
    if depth or _top_level_text(source, start, len(source), last, cuts) is None:
        return None
    return cuts


_BRACKETS = re.compile(r"[()\[\]{}]")


def _top_level_text(
    source: str, i: int, end: int, last: str, cuts: dict[str, list[tuple[int, str]]]
) -> str | None:
    """`_top_level_operators` on `source[i:end]`, outside brackets and without any:
    the operators found are added to `cuts`; the last character that is not a space
    is returned (`last` if none), or None if the text cannot be split."""
    while i < end:
        ch = source[i]
        if ch in "+-":
            start = i
            while start and (source[start - 1].isalnum() or source[start - 1] in "_."):
                start -= 1
            previous = source[start:i]
            binary = last in ")]}" or (
                bool(last)
                and (last.isalnum() or last in "_.")
                and not _EXPONENT.fullmatch(previous)
            )
            if binary:
                cuts["sum"].append((i, ch))
        elif ch == "*" and source.startswith("**", i):
            i += 2
            last = "*"
            continue
        elif ch in "*/":
            cuts["product"].append((i, ch))
        elif ch in "<>=!%@&|^~,:;#'\"" or (ch.isalpha() and _keyword_at(source, i)):
            return None
        if not ch.isspace():
            last = ch
        i += 1
    return last


_KEYWORD = re.compile(r"(?<![\w.])(?:and|or|not|if|else|lambda|for|in|is)(?![\w.])")


def _keyword_at(source: str, i: int) -> bool:
    return _KEYWORD.match(source, i) is not None


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
        self.graph = Graph()
        self._binary_rows: dict[type, str] = {}  # ast.Add -> "add"
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
        best = self.comment_problem(getattr(tree.body, "end_col_offset", 0))
        best = self.check(tree.body, 1, best)
        if best is not None:
            raise best

    def check(
        self, root: ast.AST, depth: int, best: SymgradError | None
    ) -> SymgradError | None:
        """The leftmost problem of `root` (at `depth`) or `best`, found as `validate`
        finds it (nothing right of `best` is visited)."""
        stack: list[tuple[ast.AST, int]] = [(root, depth)]
        push = stack.append
        while stack:
            node, depth = stack.pop()
            if best is not None:
                if self.column(node) > (best.column or 0):
                    continue
            elif (
                type(node) is ast.BinOp
                and depth <= MAX_DEPTH
                and type(node.op) not in _UNSUPPORTED_BINOP
            ):  # (the common case inline: no problem, and `_children`'s two)
                left = node.left
                same = False
                for group in (_SUMS, _PRODUCTS):
                    if isinstance(node.op, group):
                        same = isinstance(left, ast.BinOp) and isinstance(
                            left.op, group
                        )
                        break
                push((node.right, depth + 1))
                push((left, depth if same else depth + 1))
                continue
            if type(node) is ast.Name and depth <= MAX_DEPTH:  # (`_problem`'s answer)
                problem = self._name_problem(node)
            elif type(node) is ast.Constant and depth <= MAX_DEPTH:
                problem = self._constant_problem(node)
            else:
                problem = self._problem(node, depth)
            if problem is None:
                if type(node) is not ast.Name and type(node) is not ast.Constant:
                    stack.extend(reversed(list(self._children(node, depth))))
            elif best is None or (problem.column or 0) < (best.column or 0):
                best = problem
        return best

    def inputs(self) -> list[str]:
        """The inputs checked, in order of appearance, made the graph's first nodes
        (once every node is checked)."""
        inputs = sorted(self.first_column, key=self.first_column.__getitem__)
        for name in inputs:  # inputs first, in order of appearance
            self.graph.input(name)
        return inputs

    def comment_problem(self, end_col_offset: int) -> SymgradError | None:
        """A comment after the expression, which ends at `end_col_offset` (bytes)."""
        # After the expression only spaces and closing parentheses may follow; anything
        # else is a comment, which would silently swallow the rest of a multi-line text.
        end = self.offset(end_col_offset)
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
        elif isinstance(node, ast.Subscript):  # the bounds are numbers, checked
            yield node.value, depth + 1
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
                if type(op) not in PYTHON_OPERATORS:
                    message = "only < <= > >= == != compare numbers here"
                    return self.fail_after(message, left)
        if isinstance(node, ast.Call):
            return self._call_problem(node)
        if isinstance(node, ast.Name):
            return self._name_problem(node)
        if isinstance(node, ast.Subscript):
            return self._subscript_problem(node)
        return None

    def _subscript_problem(self, node: ast.Subscript) -> SymgradError | None:
        """1-D basic indexing only: x[i], x[a:b], x[a:b:c] with integer numbers
        (negative count from the end; a step must be positive, as PyTorch's)."""
        index = node.slice
        if isinstance(index, ast.Slice):
            parts = [index.lower, index.upper, index.step]
        elif isinstance(index, ast.Tuple):
            return self.fail(
                "only 1-D indexing is supported: one index or slice, as x[1:] or x[0]",
                index,
            )
        else:
            parts = [index]
        for part in parts:
            if part is None:
                continue
            value = _integer(part)
            if value is None:
                return self.fail(
                    "an index or slice bound must be an integer number (like 1 or "
                    "-1), not an expression",
                    part,
                )
            if part is getattr(index, "step", None) and value <= 0:
                return self.fail("a slice's step must be a positive integer", part)
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
        if not registry.rules_named(name):
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
        if registry.rules_named(name):
            return self.fail(f"'{name}' is a function: call it, as in {name}(x)", node)
        if name.startswith("_"):
            return self.fail(
                f"names starting with '_' are reserved, got '{name}'", node
            )
        if name in RESERVED_INPUTS:
            return self.fail(
                f"'{name}' is a name of the generated module; call the input "
                "something else",
                node,
            )
        column = self.column(node)
        self.first_column[name] = min(self.first_column.get(name, column), column)
        return None

    # --- the walk (only validated trees get here) -----------------------------------
    def build(self, node: ast.AST, given: dict[int, Node] | None = None) -> Node:
        """The graph of a validated tree, built without recursion (sums can be long);
        `given` holds the nodes of subtrees built already, by id() of their root."""
        # post-order: an item is pushed again with its operand count once its
        # operands are on the stack above it; their nodes end on `built` in order
        built: list[Node] = []
        stack: list[tuple[ast.AST, int]] = [(node, -1)]
        pop, push, append = stack.pop, stack.append, built.append
        graph, rows = self.graph, self._binary_rows
        while stack:
            item, count = pop()
            if given is not None and id(item) in given:
                append(given[id(item)])
                continue
            kind = type(item)
            # (the common nodes inline: what _operands and _node do with them)
            if kind is ast.BinOp:
                if count < 0:
                    push((item, 2))
                    push((item.right, -1))  # type: ignore[attr-defined]
                    push((item.left, -1))  # type: ignore[attr-defined]
                    continue
                right = built.pop()
                row = rows.get(type(item.op))  # type: ignore[attr-defined]
                if row is None:
                    row = rows[type(item.op)] = _row(item.op, 2)  # type: ignore[attr-defined]
                built[-1] = graph.apply(row, built[-1], right)
                continue
            if kind is ast.Name and item.id not in registry.CONSTANTS:  # type: ignore[attr-defined]
                append(graph.input(item.id))  # type: ignore[attr-defined]
                continue
            if kind is ast.Constant:
                append(graph.const(_as_float(item.value)))  # type: ignore[attr-defined]
                continue
            if count < 0:
                operands = self._operands(item)
                if operands:
                    stack.append((item, len(operands)))
                    stack.extend((o, -1) for o in reversed(operands))
                    continue
                count = 0
            if count:
                args = built[-count:]
                del built[-count:]
            else:
                args = []
            built.append(self._node(item, args))
        return built[0]

    @staticmethod
    def _operands(node: ast.AST) -> Sequence[ast.AST]:
        kind = type(node)
        if kind is ast.Name or kind is ast.Constant:
            return _NO_OPERANDS
        if kind is ast.BinOp:
            return [node.left, node.right]  # type: ignore[attr-defined]
        if isinstance(node, ast.UnaryOp):
            return [node.operand]
        if isinstance(node, ast.BoolOp):
            return list(node.values)
        if isinstance(node, ast.Compare):
            return [node.left, *node.comparators]
        if isinstance(node, ast.Call):
            return list(node.args)
        if isinstance(node, ast.Subscript):
            return [node.value]
        return []

    def _node(self, node: ast.AST, args: list[Node]) -> Node:
        graph = self.graph
        if type(node) is ast.BinOp:  # the common case first
            op = type(node.op)  # type: ignore[attr-defined]
            row = self._binary_rows.get(op)
            if row is None:
                row = self._binary_rows[op] = _row(node.op, 2)  # type: ignore[attr-defined]
            return graph.apply(row, *args)
        if type(node) is ast.Name and node.id not in registry.CONSTANTS:
            return graph.input(node.id)
        if isinstance(node, ast.Constant):
            return graph.const(_as_float(node.value))
        if isinstance(node, ast.Name):
            if node.id in registry.CONSTANTS:
                exact = registry.CONSTANTS[node.id]
                return graph.const(float(exact), exact if exact.is_finite else None)
            return graph.input(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return args[0]
            return graph.apply(_row(node.op, 1), args[0])
        if isinstance(node, ast.BinOp):
            return graph.apply(_row(node.op, 2), *args)
        if isinstance(node, ast.Subscript):
            index = node.slice
            if isinstance(index, ast.Slice):
                bounds = [
                    graph.const(None if p is None else float(_integer(p)))  # type: ignore[arg-type]
                    for p in (index.lower, index.upper, index.step)
                ]
                return graph.apply("slice", args[0], *bounds)
            return graph.apply("index", args[0], graph.const(float(_integer(index))))  # type: ignore[arg-type]
        if isinstance(node, ast.BoolOp):
            op = _row(node.op, 2)
            result = args[0]
            for arg in args[1:]:
                result = graph.apply(op, result, arg)
            return result
        if isinstance(node, ast.Compare):  # a < b < c means (a < b) and (b < c)
            result = None
            for op, left, right in zip(node.ops, args, args[1:], strict=False):
                mask = graph.apply(_row(op, 2), left, right)
                result = mask if result is None else graph.apply("and", result, mask)
            assert result is not None
            return result
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return self._call(node.func.id, args, node)
        raise self.fail(_describe_unsupported(node), node)  # pragma: no cover

    def _call(self, name: str, args: list[Node], node: ast.Call) -> Node:
        graph = self.graph
        if name == "norm" and len(args) == 2:
            p = args[1]
            ops = {2.0: "norm", 1.0: "norm1", math.inf: "norminf"}
            if not p.is_const or p.value not in ops:
                raise self.fail("norm(x, p) supports p = 1, 2 or inf (a number)", node)
            return graph.apply(ops[p.value], args[0])  # type: ignore[index]
        for rule in registry.rules_named(name):
            low, high = rule.arity
            if low <= len(args) and (high is None or len(args) <= high):
                if high is None or high < len(args):  # max(a, b, c): fold
                    pass
                if rule.arity[1] is None:
                    result = args[0]
                    for arg in args[1:]:
                        result = graph.apply(rule.name, result, arg)
                    return result
                if rule.name == "norm":
                    return graph.apply("norm", args[0])
                return graph.apply(rule.name, *args)
        raise self.fail(_arity_problem(name, len(args)) or "unreachable", node)


_NO_OPERANDS: tuple[ast.AST, ...] = ()


def _integer(node: ast.AST) -> int | None:
    """An integer number written as such (`2`, `-1`), else None."""
    negative = False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        negative = isinstance(node.op, ast.USub)
        node = node.operand
    if (
        isinstance(node, ast.Constant)
        and type(node.value) is int
        and abs(node.value) < 2**53
    ):
        return -node.value if negative else node.value
    return None


def _as_float(value: object) -> float:
    """A literal as a float64, as PyTorch's tensors hold it: 10**400 is inf."""
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    return float(value)  # type: ignore[arg-type]


def _arity_problem(name: str, count: int) -> str | None:
    """Why `name` cannot take `count` arguments, or None if it can."""
    arities = [rule.arity for rule in registry.rules_named(name)]
    for low, high in arities:
        if low <= count and (high is None or count <= high):
            return None
    expected = " or ".join(_arity_words(low, high) for low, high in sorted(arities))
    signatures = sorted({rule.signature for rule in registry.rules_named(name)})
    hint = f" ({', '.join(signatures)})" if signatures else ""
    return f"{name}() takes {expected}, got {count}{hint}"


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
