"""Values as users type and read them: --at input, and numbers in text, LaTeX and JSON.

Input (`parse_values`): `x=0.5,y=[1,2,3]`, nested lists for matrices, inf and nan; read
by a small tokenizer, never evaluated. Output: floats print as their repr (every digit
that identifies the float64), arrays in full (`format_value`) or, for step tables, with
their shape and elided when long (`value_text`, `value_latex`); `jsonable` gives JSON
data (inf and nan as strings).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from symgrad.errors import SymgradError

SHOW_ELEMENTS = 12  # elements of an array shown in a step table before eliding
# Brackets in one --at value may nest this deep (NumPy arrays have at most 64 axes).
MAX_VALUE_DEPTH = 32

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan"


def parse_values(text: str) -> dict[str, Any]:
    """`x=0.5,y=[1,2,3]` into arrays; nested lists make matrices. No eval."""
    values: dict[str, Any] = {}
    for item in _split_top_level(text):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise SymgradError(f"--at: expected name=value, got '{item.strip()}'")
        values[name] = np.asarray(_parse_value(value.strip(), item), dtype=np.float64)
    return values


def _split_top_level(text: str) -> list[str]:
    items, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [i for i in items if i.strip()]


def _parse_value(text: str, item: str) -> Any:
    tokens = re.findall(rf"\s*({_NUMBER}|\[|\]|,)\s*", text)
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise SymgradError(
            f"--at: cannot read the value in '{item.strip()}' (numbers "
            "like 0.5, -1e-3, inf, or lists like [1, 2, 3])"
        )
    depth = deepest = 0
    for token in tokens:
        depth += {"[": 1, "]": -1}.get(token, 0)
        deepest = max(deepest, depth)
    if deepest > MAX_VALUE_DEPTH:
        raise SymgradError(
            f"--at: the value of '{item.strip()[:20]}...' nests brackets {deepest} "
            f"levels deep (at most {MAX_VALUE_DEPTH})"
        )
    pos = 0

    def parse() -> Any:
        nonlocal pos
        if pos >= len(tokens):
            raise SymgradError(f"--at: incomplete value in '{item.strip()}'")
        token = tokens[pos]
        pos += 1
        if token == "[":
            elements = []
            while pos < len(tokens) and tokens[pos] != "]":
                elements.append(parse())
                if pos < len(tokens) and tokens[pos] == ",":
                    pos += 1
            if pos >= len(tokens):
                raise SymgradError(f"--at: missing ']' in '{item.strip()}'")
            pos += 1
            return elements
        if token in ("]", ","):
            raise SymgradError(f"--at: unexpected '{token}' in '{item.strip()}'")
        return float(token)

    value = parse()
    if pos != len(tokens):
        raise SymgradError(f"--at: unexpected text after the value in '{item.strip()}'")
    try:
        np.asarray(value, dtype=np.float64)
    except ValueError:
        raise SymgradError(f"--at: ragged list in '{item.strip()}'") from None
    return value


def format_value(value: Any) -> str:
    """Numbers as Python prints floats: every digit that identifies the float64."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _float(array.item())
    return _nested(array.tolist())


def _nested(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return _float(value)


def as_number(value: Any) -> Any:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind == "b":
        return array.astype(np.float64)
    return array


def _float(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1.0" if value else "0.0"
    if isinstance(value, complex):
        return repr(value)
    return repr(float(value))


def _elements(array: np.ndarray) -> tuple[list[Any], bool]:
    """The elements shown: all, or the first and last (flattened) of a large array."""
    if array.size <= SHOW_ELEMENTS:
        return array.tolist(), False
    flat = array.ravel().tolist()
    return flat[:6] + [...] + flat[-3:], True


def value_text(value: Any) -> str:
    """A value as text: floats as their repr; arrays with their shape."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _float(array.item())
    elements, flat = _elements(array)

    def nested(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(nested(x) for x in v) + "]"
        return "..." if v is ... else _float(v)

    shape = "shape " + repr(tuple(array.shape)) + (" flattened" if flat else "")
    return f"{nested(elements)} ({shape})"


def _float_latex(value: Any) -> str:
    text = _float(value)
    if text in ("inf", "-inf"):
        return text.replace("inf", r"\infty")
    if text == "nan":
        return r"\mathrm{nan}"
    if "e" in text and "j" not in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
    return text.replace("j", r"\,i")


def value_latex(value: Any) -> str:
    """A value as LaTeX: numbers as their repr, arrays with their shape."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _float_latex(array.item())
    elements, flat = _elements(array)

    def nested(v: Any) -> str:
        if isinstance(v, list):
            return r"\left[" + ", ".join(nested(x) for x in v) + r"\right]"
        return r"\ldots" if v is ... else _float_latex(v)

    shape = r" \times ".join(str(n) for n in array.shape)
    extra = r"\text{, flattened}" if flat else ""
    return rf"{nested(elements)}\ \left(\text{{shape }} {shape}{extra}\right)"


def jsonable(value: Any) -> Any:
    array = np.asarray(as_number(value))
    if array.dtype.kind == "c":
        return str(array.tolist())
    data = np.asarray(array, dtype=np.float64).tolist()

    def fix(v: Any) -> Any:
        if isinstance(v, list):
            return [fix(x) for x in v]
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        return v

    return fix(data)
