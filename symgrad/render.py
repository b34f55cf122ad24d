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

from symgrad import runtime
from symgrad.numpy_code import Line, NumpyProgram

LINE_WIDTH = 88
ALWAYS_HELPERS = ("_as_array", "_as_input", "_grad_like")


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


def _body(lines: list[Line], indent: str) -> str:
    out: list[str] = []
    for line in lines:
        if line.name:
            out.extend(wrap(f"{line.name} = ", line.code, indent))
        else:  # a statement of its own (del)
            out.extend(wrap("", line.code, indent))
    return "\n".join(out)


_TEMPORARY = re.compile(r"(?<![\w.])_(?:[vg]\d+|dtype)\b")


def with_deletions(lines: list[Line], keep: set[str], later: set[str]) -> list[Line]:
    """`lines` with `del` after each temporary's last use, so that large arrays are
    freed as soon as they are dead; names in `keep` (results) or used `later` stay."""
    last: dict[str, int] = {}
    for i, line in enumerate(lines):
        for name in _TEMPORARY.findall(line.code):
            last[name] = i
        if line.name and _TEMPORARY.fullmatch(line.name):
            last.setdefault(line.name, i)  # defined and never used: dead at once
    dead_after: dict[int, list[str]] = {}
    for name, i in last.items():
        if name not in keep and name not in later:
            dead_after.setdefault(i, []).append(name)
    out: list[Line] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in dead_after:
            names = sorted(dead_after[i], key=_temporary_order)
            for start in range(0, len(names), 8):  # short lines: del cannot be wrapped
                out.append(Line("", "del " + ", ".join(names[start : start + 8])))
    return out


def _temporary_order(name: str) -> tuple[str, int]:
    digits = name[2:]
    return (name[:2], int(digits) if digits.isdigit() else -1)


def _uses(lines: list[Line] | None) -> set[str]:
    return {n for line in lines or [] for n in _TEMPORARY.findall(line.code)}


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
    helpers = tuple(sorted(set(program.helpers) | set(ALWAYS_HELPERS)))

    def deleting(
        lines: list[Line] | None, keep: set[str], later: set[str]
    ) -> list[Line]:
        lines = lines or []
        return with_deletions(lines, keep, later) if free_early else lines

    sources = runtime.source(helpers)
    imports = ["import math", ""] if any("math." in s for s in sources) else []
    imports.append("import numpy as np")
    signature = ", ".join(inputs)
    signature_grad = f"{signature}, grad_output=None" if inputs else "grad_output=None"
    if len(signature_grad) > 50:  # many inputs: one per line
        signature = "\n" + "".join(f"    {n},\n" for n in inputs)
        signature_grad = signature + "    grad_output=None,\n"
    convert = "\n".join(f"    {n} = _as_input({n})" for n in inputs) or "    pass"
    grads = [f"_grad_like(_grad_{n}, {n}, _keep)" for n in inputs]
    # the arrays the caller holds: a gradient that is one of them is copied
    kept = ", ".join(["_value", "grad_output", *inputs])
    keep = "\n".join(wrap("_keep = ", f"({kept})", "    ")) if inputs else ""
    returned = "(" + ", ".join(grads) + ("," if len(grads) == 1 else "") + ")"
    gradient_return = "\n".join(wrap("return _value, ", returned, "    "))
    call = ", ".join([*inputs, "grad_output=grad_output"])
    backward_call = "\n".join(
        wrap("return value_and_grad(", f"{call})[1]", "    ")
        if len(call) < 60
        else ["    return value_and_grad("]
        + [f"        {n}," for n in inputs]
        + ["        grad_output=grad_output,", "    )[1]"]
    )
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
        "imports": "\n".join(imports),
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
        "signature_grad": signature_grad,
        "convert": convert,
        "forward_body": _body(
            deleting(program.forward, {program.value}, set()), " " * 8
        )
        or "        pass",
        "vag_forward_body": _body(
            deleting(
                program.forward,
                {program.value},
                _uses(program.backward) | _uses(program.default_backward),
            ),
            " " * 8,
        )
        or "        pass",
        "value": program.value,
        "backward_block": _backward_block(program, deleting),
        "gradient_return": gradient_return,
        "keep": keep,
        "backward_call": backward_call,
        "helper_sources": sources,
    }
    return _environment().get_template("module.py.jinja").render(**context)


def _backward_block(program: NumpyProgram, deleting: Any) -> str:
    """The backward pass: with grad_output folded away when it is None, else with it."""
    if not program.inputs:
        return ""

    def branch(lines: list[Line], codes: dict[str, str], indent: str) -> str:
        finals = [Line(f"_grad_{n}", codes[n]) for n in program.inputs]
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


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 40] + " ... (see EXPRESSION)"


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
