"""Render: lay a NumPy program out as a standalone Python module through a Jinja
template.

The template (`templates/module.py.jinja`) holds the module's layout only; everything it
receives is a finished string. Generated modules import nothing but NumPy (and `math`
when a helper needs it): the runtime helpers they use are copied in as source.
"""

from __future__ import annotations

import functools
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from symgrad import runtime
from symgrad.numpy_code import Line, LineLike, NumpyProgram

LINE_WIDTH = 88
ALWAYS_HELPERS = (
    "_as_array",
    "_thread_count",
    "_as_input",
    "_as_tangent",
    "_grad_like",
    "_tangent_like",
)
SECOND_ORDER_HELPERS = (
    "_all_scalars",
    "_hessian_blocks",
    "_hessian_by_hvp",
    "_hessian_from_sparse",
    "_input_dtype",
)


@functools.cache
def _environment():  # type: ignore[no-untyped-def]
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def template_dir() -> Path:
    """Where the templates are: inside the installed package, or the repository's."""
    here = Path(__file__).resolve().parent
    for folder in (here / "templates", here.parent / "templates"):
        if (folder / "module.py.jinja").is_file():
            return folder
    raise RuntimeError(f"symgrad's templates are missing (looked in {here})")


def wrap(prefix: str, code: str, indent: str, width: int = LINE_WIDTH) -> list[str]:
    """`prefix + code` in lines of at most `width` columns (parenthesized if split)."""
    line = indent + prefix + code
    if len(line) <= width:
        return [line]
    inner = indent + "    "
    body = textwrap.wrap(
        code, width=width - len(inner), break_long_words=False, break_on_hyphens=False
    )
    return [indent + prefix + "("] + [inner + part for part in body] + [indent + ")"]


def _body(lines: list[LineLike] | _Deleting, indent: str) -> str:
    if isinstance(lines, _Deleting):
        return lines.body(indent)
    out: list[str] = []
    append = out.append
    for name, code, _ in lines:  # a short line as wrap() gives it, without calling it
        prefix = f"{name} = " if name else ""  # else a statement (del)
        text = f"{indent}{prefix}{code}"
        if len(text) <= LINE_WIDTH:
            append(text)
        else:
            out.extend(wrap(prefix, code, indent))
    return "\n".join(out)


_TEMPORARY = re.compile(r"(?<![\w.])_(?:[vgth]\d+|dtype)\b")


def _last_uses(
    lines: list[LineLike], start: int = 0, last: dict[str, int] | None = None
) -> dict[str, int]:
    """The index of the line where each temporary of `lines` is used for the last
    time (or defined, if never used); `last` holds them for `lines[:start]`."""
    temporaries = _TEMPORARY.findall
    is_temporary = _TEMPORARY.fullmatch
    last = {} if last is None else last
    for i in range(start, len(lines)):
        name, code, _ = lines[i]
        for used in temporaries(code):
            last[used] = i
        if name and name not in last and is_temporary(name):
            last[name] = i  # defined and never used: dead at once
    return last


def _deaths(last: dict[str, int]) -> dict[int, tuple[str, ...]]:
    """The temporaries each line uses for the last time, by line index, in `del`
    order, from `_last_uses`."""
    # tuples of strings, which the garbage collector stops tracking (lists would be
    # traversed at every full collection while they live)
    deaths: dict[int, tuple[str, ...]] = {}
    for name, i in last.items():
        deaths[i] = deaths.get(i, ()) + (name,)
    for i, names in deaths.items():
        if len(names) == 2:  # (the common case: one comparison)
            if _temporary_order(names[1]) < _temporary_order(names[0]):
                deaths[i] = (names[1], names[0])
        elif len(names) > 2:
            deaths[i] = tuple(sorted(names, key=_temporary_order))
    return deaths


def with_deletions(
    lines: list[LineLike], keep: set[str], later: set[str]
) -> list[LineLike]:
    """`lines` with `del` after each temporary's last use, so that large arrays are
    freed as soon as they are dead; names in `keep` (results) or used `later` stay."""
    deaths = _deaths(_last_uses(lines))
    out: list[LineLike] = []
    for i, line in enumerate(lines):
        out.append(line)
        dead = [n for n in deaths.get(i, ()) if n not in keep and n not in later]
        for start in range(0, len(dead), 8):  # short lines: del cannot be wrapped
            out.append(Line("", "del " + ", ".join(dead[start : start + 8])))
    return out


# Functions longer than this are laid out without in-place reuse: such programs come
# from expressions written out over many scalar inputs (a sum over x0 ... x999), where
# there are no arrays to reuse and np.multiply(a, b, out=...) costs more than a * b.
REUSE_LINES = 4000
# In-place reuse of dead temporaries (`out=_spare(...)`): the operators rewritten
# (not `**`: NumPy's a ** 2 is square, a ** 0.5 sqrt, which np.power need not match).
_OPERATORS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_BINARY = re.compile(r"^(\S+) ([-+*/]) (\S+)$")
_NEGATION = re.compile(r"^-(_[vgth]\d+)$")
_REUSABLE = re.compile(r"^_[vgth]\d+$")
# NumPy calls that always return a new array (or scalar), never one of their arguments
_FRESH_CALLS = frozenset(
    name for name in dir(np) if isinstance(getattr(np, name, None), np.ufunc)
) | {"where", "sum", "max", "min", "mean", "prod"}


# one match tells a fresh line: an operator (a power too), a comparison, a negation,
# or a call of a NumPy function that makes a new array (group 1: its name)
_FRESH = re.compile(
    r"^(?:\S+ (?:[-+*/]|\*\*) \S+$|\(\S+ [<>=!]=? \S+\)$|-\S+$|np\.(\w+)\()"
)


def _fresh(code: str) -> bool:
    """Whether `code` makes a new array, never handing back one of its operands."""
    match = _FRESH.match(code)
    if match is None:
        return False
    call = match.group(1)
    return call is None or (call in _FRESH_CALLS and "out=" not in code)


def spare_temporaries(scope: list[LineLike]) -> set[str]:
    """The temporaries of a function (`scope`: all its lines) that may be written
    into at their last use: made by arithmetic (fresh arrays) and never handed on by
    another line (a name defined in both backward branches must be fresh in both).

    A _sum_like of a fresh temporary used nowhere else hands on that temporary or a
    new sum: either way its result is the only name left for the array, and is as
    fresh as the temporary was (the temporary itself is not reused: aliased)."""
    findall = _TEMPORARY.findall
    fresh: dict[str, bool] = {}
    aliased: set[str] = set()
    summed: dict[str, int] = {}  # temporary -> the _sum_like lines it is summed by
    defined: dict[str, int] = {}
    transfers: list[tuple[str, str]] = []  # (result, summed temporary)
    for name, code, _ in scope:
        if not name:
            continue
        defined[name] = defined.get(name, 0) + 1
        made = _fresh(code)
        if not made:
            if code.startswith("_sum_like("):  # the shapes it reads are not returned
                first = code[10 : code.index(",")]
                summed[first] = summed.get(first, 0) + 1
                transfers.append((name, first))
                aliased.update(findall(first))
            else:
                aliased.update(findall(code))
        fresh[name] = fresh.get(name, True) and made
    if transfers:
        # how often each summed temporary occurs at all (a line naming it twice
        # counts twice: then it is not transferred, which is safe)
        wanted = set(summed)
        uses: dict[str, int] = {}
        for found in findall("\n".join([code for _, code, _ in scope])):
            if found in wanted:
                uses[found] = uses.get(found, 0) + 1
        for result, first in transfers:  # in order: a transfer of a transfer
            once = uses.get(first) == summed[first] == defined.get(first)
            if once and fresh.get(first, False) and defined.get(result) == 1:
                fresh[result] = True
    return {
        name
        for name, ok in fresh.items()
        if ok and name not in aliased and _REUSABLE.match(name)
    }


def _reused(code: str, dead: set[str]) -> str:
    """`code` writing into one of its operands that die there (`dead`), if it can."""
    negation = _NEGATION.match(code)
    if negation and negation.group(1) in dead:
        a = negation.group(1)
        return f"np.negative({a}, out=_spare({a}, {a}))"
    binary = _BINARY.match(code)
    if binary is None:
        return code
    a, op, b = binary.groups()
    ufunc = _OPERATORS[op]
    if a != b and a in dead and b in dead:  # either may be the full-size one
        return f"np.{ufunc}({a}, {b}, out=_spare_either({a}, {b}))"
    for target, other in ((a, b), (b, a)):
        if target in dead:
            return f"np.{ufunc}({a}, {b}, out=_spare({target}, {other}))"
    return code


class _Deleting:
    """`with_deletions(lines, keep, later)` before it is laid out: `_body` writes its
    text directly, without a `Line` per `del` in between (a large module has hundreds
    of thousands), and bodies of the same lines (`forward` and `value_and_grad`)
    can share where the temporaries die."""

    def __init__(
        self,
        lines: list[LineLike],
        keep: set[str],
        later: set[str],
        deaths: dict[int, tuple[str, ...]] | None = None,
        spare: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.lines = lines
        self.keep = keep
        self.later = later
        # temporaries an arithmetic line may write into at their last use (see
        # spare_temporaries and _reused)
        self.spare = spare
        self.deaths = _deaths(_last_uses(lines)) if deaths is None else deaths

    def body(self, indent: str) -> str:
        """`_body(with_deletions(lines, keep, later), indent)`."""
        deaths, keep, later, spare = self.deaths, self.keep, self.later, self.spare
        kept = keep | later
        out: list[str] = []
        append = out.append
        for i, (name, code, _) in enumerate(self.lines):
            if spare and name and i in deaths:
                dying = {n for n in deaths[i] if n not in kept} & spare
                if dying:
                    code = _reused(code, dying)
            text = f"{indent}{name} = {code}" if name else indent + code
            if len(text) <= LINE_WIDTH:
                append(text)
            else:
                out.extend(wrap(f"{name} = " if name else "", code, indent))
            dead = deaths.get(i)
            if dead is None:
                continue
            if len(dead) == 1:  # (the common case: one name, a short line)
                if dead[0] not in kept:
                    text = f"{indent}del {dead[0]}"
                    if len(text) <= LINE_WIDTH:
                        append(text)
                    else:
                        out.extend(wrap("", f"del {dead[0]}", indent))
                continue
            dead = [n for n in dead if n not in kept]
            for start in range(0, len(dead), 8):  # short lines: del is not wrapped
                code = "del " + ", ".join(dead[start : start + 8])
                text = indent + code
                if len(text) <= LINE_WIDTH:
                    append(text)
                else:
                    out.extend(wrap("", code, indent))
        return "\n".join(out)


def _temporary_order(name: str) -> tuple[str, int, str]:
    # `_v` then `_g`... by number: numbers have no leading zeros, so a shorter one is
    # smaller (`_dtype` sorts among the `_d`s, where it is alone)
    return (name[:2], len(name), name)


def _uses(lines: list[LineLike] | None) -> set[str]:
    # (one search of the joined code: a temporary never spans a line break)
    return set(_TEMPORARY.findall("\n".join([line[1] for line in lines or []])))


def _doc_block(items: list[str], indent: str = "    ", limit: int = 40) -> str:
    lines: list[str] = []
    for item in items[:limit]:
        lines.extend(
            textwrap.wrap(
                item,
                width=LINE_WIDTH - len(indent),
                subsequent_indent="    ",
                break_long_words=True,
                break_on_hyphens=False,
            )
            or [""]
        )
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more")
    return doc_safe("\n".join(indent + line if line else "" for line in lines))


def doc_safe(text: str) -> str:
    """`text` as the body of a triple-quoted docstring that reads back as `text`.

    Whatever the user typed (a path with three quotes, a backslash, a control
    character) stays inside the string: backslashes and every quote are escaped, and
    characters that are not printable are written as escape sequences.
    """
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def render_module(
    program: NumpyProgram,
    *,
    expression: str,
    title: str,
    version: str,
    command: str,
    convention: str,
    value_doc: list[str],
    gradient_doc: list[str],
    notes: list[str],
    free_early: bool = True,
) -> str:
    """The text of a standalone module for `program`.

    `free_early` deletes each temporary after its last use (less memory); without it
    every intermediate value stays readable in the functions' locals (for the steps).
    """
    inputs = program.inputs
    wrt = program.wrt or inputs
    second_order = program.hvp is not None
    always = (
        ALWAYS_HELPERS
        + (SECOND_ORDER_HELPERS if second_order else ())
        + (("_in_threads",) if program.elementwise else ())
    )
    helpers = tuple(sorted(set(program.helpers) | set(always)))

    # where each list's temporaries are last used, shared by its bodies and carried on
    # into lists that extend it (forward + jvp); the list is kept, its id is the key
    scanned: dict[
        int, tuple[list[LineLike], dict[str, int], dict[int, tuple[str, ...]]]
    ]
    scanned = {}

    # value_and_grad's lines, for which temporaries another line may hand on
    vag_scope = (
        program.forward
        + program.backward
        + (program.default_backward or [])
        + [
            (f"_grad_{n}", code, "")
            for codes in (program.gradients, program.default_gradients)
            for n, code in codes.items()
        ]
    )
    vag_spare = (
        spare_temporaries(vag_scope)
        if free_early and len(vag_scope) <= REUSE_LINES
        else set()
    )

    def deleting(
        lines: list[LineLike] | None,
        keep: set[str],
        later: set[str],
        scope: list[LineLike] | None = None,
        reuse: bool = True,
    ) -> list[LineLike] | _Deleting:
        """`lines` with each temporary deleted after its last use and, there, written
        into by an arithmetic line where it can be (`scope`: the function's lines)."""
        lines = lines or []
        if not free_early:
            return lines
        entry = scanned.get(id(lines))
        if entry is None:
            start, last = 0, {}
            for known, known_last, _ in scanned.values():
                if start < len(known) <= len(lines) and lines[: len(known)] == known:
                    start, last = len(known), dict(known_last)
            last = _last_uses(lines, start, last)
            entry = scanned[id(lines)] = (lines, last, _deaths(last))
        spare: set[str] = set()
        if reuse and scope is vag_scope:
            spare = vag_spare
        elif reuse and len(lines) <= REUSE_LINES:
            spare = spare_temporaries(lines)
        return _Deleting(lines, keep, later, entry[2], spare)

    signature = ", ".join(inputs)
    signature_grad = f"{signature}, grad_output=None" if inputs else "grad_output=None"
    signature_forward = f"{signature}, *, threads=1" if inputs else "*, threads=1"
    signature_grad += ", *, threads=1"
    if len(signature_grad) > 60:  # many inputs: one per line
        signature = "\n" + "".join(f"    {n},\n" for n in inputs)
        signature_forward = signature + "    *,\n    threads=1,\n"
        signature_grad = signature + "    grad_output=None,\n    *,\n    threads=1,\n"
    convert = "\n".join(f"    {n} = _as_input({n})" for n in inputs) or "    pass"
    grads = [f"_grad_like(_grad_{n}, {n}, _keep)" for n in wrt]
    # the arrays the caller holds: a gradient that is one of them is copied
    kept = ", ".join(["_value", "grad_output", *inputs])
    keep = "\n".join(wrap("_keep = ", f"({kept})", "    ")) if inputs else ""
    returned = "(" + ", ".join(grads) + ("," if len(grads) == 1 else "") + ")"
    gradient_return = "\n".join(wrap("return _value, ", returned, "    "))
    call = ", ".join([*inputs, "grad_output=grad_output", "threads=threads"])
    backward_call = "\n".join(
        wrap("return value_and_grad(", f"{call})[1]", "    ")
        if len(call) < 60
        else ["    return value_and_grad("]
        + [f"        {n}," for n in inputs]
        + ["        grad_output=grad_output,", "        threads=threads,", "    )[1]"]
    )
    at = {n: i for i, n in enumerate(inputs)}
    positions = tuple(at[n] for n in wrt)
    context = {
        "title": doc_safe(title),
        "version": version,
        "expression_doc": _doc_block([_short(expression, 2000)]),
        "command_doc": _doc_block([command]),
        "inputs_doc": _doc_block(
            [
                "Inputs: "
                + (
                    ", ".join(inputs)
                    if len(inputs) <= 12
                    else f"{', '.join(inputs[:6])}, ... ({len(inputs)} inputs)"
                )
                + " (scalars or arrays whose shapes broadcast together)."
            ],
            indent="",
        ),
        "convention_doc": "PyTorch's" if convention == "torch" else "JAX's",
        "value_doc": _doc_block(value_doc),
        "gradient_doc": _doc_block(gradient_doc),
        "notes_doc": _doc_block(notes) if notes else "",
        "inputs_tuple": repr(tuple(inputs))
        if len(repr(tuple(inputs))) < 70
        else "(\n" + "".join(f"    {n!r},\n" for n in inputs) + ")",
        "expression_repr": repr(expression)
        if len(expression) < 70
        else "(\n"
        + "\n".join(f"    {part!r}" for part in _chunks(expression, 70))
        + "\n)",
        "convention_repr": repr(convention),
        "signature": signature,
        "signature_forward": signature_forward,
        "signature_grad": signature_grad,
        "elementwise": program.elementwise,
        "threads_forward": _call(
            "_value = _in_threads", f"forward, {_tuple(inputs)}, None, threads, None"
        ),
        "threads_grad": _call(
            "_result = _in_threads",
            f"value_and_grad, {_tuple(inputs)}, grad_output, threads, {positions!r}",
        ),
        "convert": convert,
        "forward_body": _body(
            deleting(program.forward, {program.value}, set()), " " * 8
        )
        or "        pass",
        "vag_forward_body": _body(
            deleting(
                program.forward,
                {program.value},
                _uses(program.backward)
                | _uses(program.default_backward)
                # a gradient that is a forward value itself (0*exp(z)'s is 0*exp(z))
                | {
                    name
                    for code in (
                        *program.gradients.values(),
                        *program.default_gradients.values(),
                    )
                    for name in _TEMPORARY.findall(code)
                },
                vag_scope,
            ),
            " " * 8,
        )
        or "        pass",
        "value": program.value,
        "backward_block": _backward_block(
            program, lambda lines, keep, later: deleting(lines, keep, later, vag_scope)
        ),
        "gradient_return": gradient_return,
        "keep": keep,
        "backward_call": backward_call,
        "wrt_tuple": _tuple_repr(wrt),
        "second_order": second_order,
        **_forward_mode_context(program, inputs, wrt, convert, deleting),
    }
    texts = [text for text in context.values() if isinstance(text, str)]
    for helper in ("_spare", "_spare_either"):
        if any(f"{helper}(" in text for text in texts):
            helpers = tuple(sorted({*helpers, helper}))
    sources = runtime.source(helpers)
    imports = ["import math", ""] if any("math." in s for s in sources) else []
    imports.append("import numpy as np")
    context["imports"] = "\n".join(imports)
    context["helper_sources"] = sources
    return _environment().get_template("module.py.jinja").render(**context)


def _backward_block(program: NumpyProgram, deleting: Any) -> str:
    """The backward pass: with grad_output folded away when it is None, else with it."""
    if not program.wrt:
        return ""

    def branch(lines: list[LineLike], codes: dict[str, str], indent: str) -> str:
        finals = [Line(f"_grad_{n}", codes[n]) for n in program.wrt]
        body = deleting(lines + finals, {program.value}, set())
        return _body(body, indent)

    if program.default_backward is None:  # one pass serves both
        return "\n".join(
            [
                "        # grad_output=None: the gradient of sum(value)",
                "        grad_output = (",
                "            1.0 if grad_output is None else _as_array(grad_output)",
                "        )",
                branch(program.backward, program.gradients, " " * 8),
            ]
        ).rstrip()
    return "\n".join(
        [
            "        if grad_output is None:  # the gradient of sum(value)",
            branch(program.default_backward or [], program.default_gradients, " " * 12),
            "        else:",
            "            grad_output = _as_array(grad_output)",
            branch(program.backward, program.gradients, " " * 12),
        ]
    ).rstrip()


def _call(head: str, args: str, indent: str = "    ") -> str:
    """`head(args)` as a statement, its arguments wrapped inside the parentheses."""
    line = f"{indent}{head}({args})"
    if len(line) <= LINE_WIDTH:
        return line
    inner = indent + "    "
    body = textwrap.wrap(
        args,
        width=LINE_WIDTH - len(inner),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join([f"{indent}{head}("] + [inner + b for b in body] + [indent + ")"])


def _tuple(names: tuple[str, ...]) -> str:
    """Names as a tuple display on one line: `(x,)`, `(x, y)`."""
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def _tuple_repr(names: tuple[str, ...]) -> str:
    text = repr(tuple(names))
    if len(text) < 70:
        return text
    return "(\n" + "".join(f"    {n!r},\n" for n in names) + ")"


def _args(names: tuple[str, ...]) -> str:
    """Names inside parentheses: a tuple (one name has its comma), or call args."""
    text = ", ".join(names) + ("," if len(names) == 1 else "")
    if len(text) < 60:
        return text
    return "\n" + "".join(f"        {n},\n" for n in names) + "    "


def _unpack(names: tuple[str, ...], source: str) -> list[str]:
    """`a, b = source` (wrapped in parentheses when long)."""
    if not names:
        return []
    target = f"({names[0]},)" if len(names) == 1 else ", ".join(names)
    line = f"    {target} = {source}"
    if len(line) <= LINE_WIDTH:
        return [line]
    return ["    ("] + [f"        {n}," for n in names] + [f"    ) = {source}"]


def _forward_mode_context(
    program: NumpyProgram,
    inputs: tuple[str, ...],
    wrt: tuple[str, ...],
    convert: str,
    deleting: Any,
) -> dict[str, Any]:
    """The template's strings for jvp and, with second order, hvp and Hessians."""
    dots = tuple(f"_dot_{n}" for n in wrt)
    as_tangents = [f"    _dot_{n} = _as_tangent(_dot_{n}, {n})" for n in wrt]
    setup = (
        _unpack(inputs, "primals") + [convert] + _unpack(dots, "tangents") + as_tangents
    )
    context: dict[str, Any] = {
        "jvp_setup": "\n".join(setup),
        "jvp_body": _body(
            deleting(
                program.forward + program.jvp,
                {program.value, program.jvp_tangent},
                set(),
            ),
            " " * 8,
        )
        or "        pass",
        "jvp_tangent": program.jvp_tangent,
    }
    if program.hvp is None:
        return context
    hvp_setup = (
        _unpack(inputs, "primals")
        + [convert]
        + _unpack(dots, "vectors").copy()
        + [line.replace("tangents", "vectors") for line in as_tangents]
        + [
            "    # grad_output=None: the Hessian of sum(value)",
            "    grad_output = 1.0 if grad_output is None else _as_array(grad_output)",
        ]
    )
    products = [program.hvp_products[n] for n in wrt]
    kept = ", ".join(["_value", "grad_output", *inputs])
    returned = [
        f"_grad_like({code}, {n}, _keep)" for code, n in zip(products, wrt, strict=True)
    ]
    returned_text = (
        "(" + ", ".join(returned) + ("," if len(returned) == 1 else "") + ")"
    )
    entries = program.hessian_entries
    rows, columns = program.hessian_sparsity
    context.update(
        {
            "hvp_setup": "\n".join(hvp_setup),
            "hvp_body": _body(
                deleting(
                    program.forward + program.hvp, {program.value, *products}, set()
                ),
                " " * 8,
            )
            or "        pass",
            "hvp_keep": "\n".join(wrap("_keep = ", f"({kept})", "    ")),
            "hvp_return": "\n".join(wrap("return _value, ", returned_text, "    ")),
            "sparsity_rows": _index_array(rows),
            "sparsity_columns": _index_array(columns),
            "scalar_convert": "\n".join(
                [f"    {n} = np.reshape({n}, ())" for n in wrt]
                + (  # a large program's one backward pass, run with 1
                    ["    grad_output = 1.0"]
                    if any("grad_output" in line[1] for line in program.hessian or [])
                    else []
                )
            )
            or "    pass",
            "hessian_body": _body(
                deleting(  # scalars: no arrays to reuse
                    program.forward + (program.hessian or []),
                    set(entries),
                    set(),
                    reuse=False,
                ),
                " " * 8,
            )
            or "        pass",
            "hessian_return": "\n".join(
                wrap("_entries = ", "[" + ", ".join(entries) + "]", "    ")
                + wrap("_hessian_dtype = ", f"_input_dtype({', '.join(wrt)})", "    ")
                + ["    return np.array(_entries, dtype=_hessian_dtype)"]
            ),
            "scalar_hessian": program.scalar_hessian,
            "inputs_args": _args(inputs),
            "wrt_args": _args(wrt),
            "call_args": _args(inputs),
            "wrt_positions": "\n".join(
                wrap(
                    "_positions = ",
                    repr(tuple({n: i for i, n in enumerate(inputs)}[n] for n in wrt)),
                    "        ",
                )
            ),
        }
    )
    return context


def _index_array(values: tuple[int, ...]) -> str:
    """An integer index array as source (a tuple item), wrapped to the width."""
    listed = "[" + ", ".join(str(v) for v in values) + "]"
    line = f"    np.array({listed}, dtype=np.intp),"
    if len(line) <= LINE_WIDTH:
        return line
    body = textwrap.wrap(listed, width=LINE_WIDTH - 8, break_on_hyphens=False)
    body[-1] += ","
    return "\n".join(
        ["    np.array("]
        + [f"        {b}" for b in body]
        + ["        dtype=np.intp,", "    ),"]
    )


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 40] + " ... (see EXPRESSION)"


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
