"""The function catalog, read from the registry (`symgrad functions`, the docs)."""

from __future__ import annotations

from typing import Any

import sympy as sp

from symgrad import registry
from symgrad.printing import to_text
from symgrad.program import display_form
from symgrad.registry import SMOOTH

_ARG_NAMES = {1: ("x",), 2: ("a", "b"), 3: ("x", "lo", "hi")}


def _arg_symbols(rule: registry.Rule) -> tuple[sp.Symbol, ...]:
    inside = rule.signature[rule.signature.find("(") + 1 : rule.signature.rfind(")")]
    names = [n.strip() for n in inside.split(",") if n.strip() and n.strip() != "..."]
    names = [n for n in names if n.isidentifier()]
    if rule.cls is sp.polygamma:
        return (sp.Integer(2), sp.Symbol("x", real=True))
    if len(names) < rule.arity[0]:
        names = list(_ARG_NAMES.get(rule.arity[0], ("x",)))
    return tuple(sp.Symbol(n, real=True) for n in names[: rule.arity[0]])


def catalog_rows(public_only: bool = True) -> list[dict[str, Any]]:
    """One entry per function of the language: signature, derivative rule, kink."""
    rows = []
    for rule in registry.RULES:
        public = rule.is_public
        if public_only and not public:
            continue
        args = _arg_symbols(rule)
        if rule.cls in (sp.Add, sp.Mul, sp.Pow):
            node = rule.cls(*args, evaluate=False)
        else:
            node = rule.to_sympy(*args)
        partials = rule.readable_partials(args, node)
        derivative = {}
        for arg, partial in zip(args, partials, strict=True):
            if isinstance(arg, sp.Symbol):
                derivative[str(arg)] = to_text(display_form(sp.sympify(partial)))
        jax = None
        if rule.jax is not None:
            jax = {
                str(a): to_text(display_form(p))
                for a, p in zip(args, rule.partials(args, node, "jax"), strict=True)
                if isinstance(a, sp.Symbol)
            }
        rows.append(
            {
                "name": rule.name,
                "names": list(rule.names),
                "signature": rule.signature,
                "description": rule.description,
                "derivative": derivative,
                "derivative_jax": jax,
                "kink": "" if rule.kink == SMOOTH else rule.kink,
                "reduction": rule.reduction,
            }
        )
    return rows
