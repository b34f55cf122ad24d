"""The NumPy helpers generated modules carry, as functions and as source.

`core.py`, `special.py`, `second_order.py` and `indexing.py` define them (each a
top-level `def _name`, importing only `math` and `numpy`); this package publishes them:
`HELPERS` maps each name to the function (the evaluator calls these), and
`source(names)` gives the source text of the named helpers and of those they call,
which the renderer copies verbatim into a module.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from symgrad.runtime import core, indexing, second_order, special

_MODULES = (core, special, second_order, indexing)
_CALL = re.compile(r"(?<![\w.])(_[a-z]\w*)\(")


def _collect() -> tuple[dict[str, Callable[..., Any]], dict[str, str]]:
    functions: dict[str, Callable[..., Any]] = {}
    sources: dict[str, str] = {}
    for module in _MODULES:
        text = inspect.getsource(module)
        lines = text.splitlines()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = getattr(module, node.name)
                sources[node.name] = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return functions, sources


HELPERS, _SOURCES = _collect()


def source(names: Iterable[str]) -> list[str]:
    """Source of the named helpers and of the helpers they call, sorted by name."""
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        if name not in _SOURCES:
            raise LookupError(f"no runtime helper {name!r} in symgrad/runtime")
        wanted.add(name)
        todo.extend(c for c in _CALL.findall(_SOURCES[name]) if c in _SOURCES)
    return [_SOURCES[name] for name in sorted(wanted)]
