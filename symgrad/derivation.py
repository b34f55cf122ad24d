"""Derive: an expression's gradient as formulas, notes, numbers and a NumPy module.

`derive(text)` is the Python API behind `symgrad derive`: it parses the text, builds the
reverse program, and returns a `Derivation` holding the SymPy gradient of each input (as
a reader wants it: simplified, no internal helpers), the notes on kink conventions, and,
on demand, the NumPy module that computes the same program (used for `--at` and by
`symgrad generate`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sympy as sp

from symgrad import functions as F
from symgrad import program, simplify
from symgrad.errors import SymgradError
from symgrad.parse import Parsed, parse
from symgrad.printing import (
    latex_name,
    latex_rows,
    second_label,
    second_latex_rows,
    to_latex,
    to_sympy_text,
    to_text,
)
from symgrad.registry import SMOOTH

if TYPE_CHECKING:  # the reverse program is built on demand: printing needs none
    from symgrad import reverse
    from symgrad.steps import Trace

CONVENTIONS = ("torch", "jax")
# Display budgets, in operations of the graph: above the first, the expression is
# shown as the user typed it (SymPy is not asked to build it); above the second, the
# derivative formulas are omitted (SymPy's assembly grows faster than the program).
# The numbers and the generated code never depend on them.
DISPLAY_NODES = 3_000
FORMULA_NODES = 400
# Above this many inputs, a generated module's docstring writes `f(...)` with the
# first six inputs and their count, not every name (INPUTS lists them all; at 10,000
# inputs the list alone was 950 lines of docstring). Nothing else changes.
DOC_INPUTS = 1_000


@dataclass
class Derivation:
    """An expression, its inputs, and the gradient of each input (SymPy expressions)."""

    text: str
    expression: sp.Expr
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    convention: str
    derivatives: dict[str, sp.Expr] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    parsed: Parsed | None = field(default=None, repr=False)
    # order 2: each pair of wrt inputs once, in wrt order (d2f/dxdy under "x", "y")
    second_derivatives: dict[str, dict[str, sp.Expr]] = field(default_factory=dict)
    order: int = 1

    @property
    def hessian(self) -> sp.Matrix:
        """The second derivatives as a symmetric SymPy matrix over the wrt inputs
        (elementwise formulas: for arrays, the Hessian of sum(f) is made of them)."""
        if self.order < 2:
            raise SymgradError("the Hessian needs derive(..., order=2)")
        n = len(self.wrt)

        def entry(i: int, j: int) -> sp.Expr:
            a, b = (self.wrt[i], self.wrt[j]) if i <= j else (self.wrt[j], self.wrt[i])
            return self.second_derivatives.get(a, {}).get(b, sp.nan)

        return sp.Matrix(n, n, entry)

    # --- formats ----------------------------------------------------------------------
    def text_lines(self) -> list[str]:
        lines = [f"f({', '.join(self.inputs)}) = {to_text(self.expression)}"]
        for name, d in self.derivatives.items():
            lines.append(f"df/d{name} = {to_text(d)}")
        for a, by in self.second_derivatives.items():
            for b, d in by.items():
                lines.append(f"{second_label(a, b)} = {to_text(d)}")
        return lines

    def latex(self) -> str:
        """LaTeX lines: the function, then each partial derivative (and with order
        2 each second partial derivative)."""
        rows = latex_rows(self.inputs, self.expression, self.derivatives)
        rows += second_latex_rows(self.second_derivatives)
        return "\n".join(f"{left} = {right}" for left, right in rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": to_text(self.expression),
            "input": self.text,
            "inputs": list(self.inputs),
            "convention": self.convention,
            "derivatives": {
                name: {
                    "text": to_sympy_text(d),
                    "symgrad": to_text(d),
                    "latex": to_latex(d),
                }
                for name, d in self.derivatives.items()
            },
            **(
                {
                    "second_derivatives": {
                        a: {
                            b: {
                                "text": to_sympy_text(d),
                                "symgrad": to_text(d),
                                "latex": to_latex(d),
                            }
                            for b, d in by.items()
                        }
                        for a, by in self.second_derivatives.items()
                    }
                }
                if self.order >= 2
                else {}
            ),
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def markdown(self) -> str:
        """Prose and `$$` math, for READMEs, Jupyter and MkDocs."""
        rows = latex_rows(self.inputs, self.expression, self.derivatives)
        rows += second_latex_rows(self.second_derivatives)
        (function, value), partials = rows[0], rows[1:]
        parts = [f"For ${function} = {value}$:", ""]
        for left, right in partials:
            parts += ["$$", f"{left} = {right}", "$$", ""]
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_latex_(self) -> str:
        # aligned at each row's own `=`: an `=` inside a formula (max's [x = y]) is
        # no alignment point, and an `&` there is a KaTeX/LaTeX error
        rows = latex_rows(self.inputs, self.expression, self.derivatives)
        body = r" \\ ".join(f"{left} &= {right}" for left, right in rows)
        return rf"$\begin{{aligned}} {body} \end{{aligned}}$"

    def __str__(self) -> str:
        return "\n".join(self.text_lines())

    # --- numbers ----------------------------------------------------------------------
    @cached_property
    def program(self) -> reverse.Program:
        """The reverse program over the graph of the expression as written: what the
        generated code, `--at`, the steps, plot and check all compute."""
        from symgrad import reverse

        parsed = self.parsed if self.parsed is not None else parse(self.text)
        return reverse.build_program(
            parsed.text,
            parsed.graph,
            parsed.output,
            self.inputs,
            wrt=self.wrt,
            convention=self.convention,
        )

    def steps(self, at: Mapping[str, Any] | str | None = None) -> Trace:
        """The backward pass step by step, as `symgrad derive --steps` shows it: the
        forward trace, each adjoint with its rule, and the result, with every step's
        value when `at` gives the inputs (``{"x": 0.5}``, or ``"x=0.5, y=[1,2]"`` as
        for ``--at``). ``str()`` of it is the text; ``.format("latex")``, "markdown"
        or "json" the other formats; Jupyter shows it as Markdown."""
        from symgrad.steps import trace

        if isinstance(at, str):
            from symgrad.values import parse_values

            at = parse_values(at)
        return trace(self, at=at)

    @cached_property
    def function(self) -> reverse.Function:
        """forward, backward and value_and_grad as the generated module has them,
        computed by the evaluator over the same program."""
        from symgrad import reverse

        return reverse.Function(self.program)

    def module_source(
        self,
        *,
        command: str = "",
        title: str | None = None,
        free_early: bool = True,
        order: int = 1,
    ) -> str:
        """A standalone NumPy module computing the value and the gradient (forward,
        backward, value_and_grad, jvp), and with `order` 2 hvp and the Hessians."""
        if order not in (1, 2):
            raise SymgradError(f"--order {order}: symgrad derives orders 1 and 2")
        # imported here: NumPy and the templates are not needed to print formulas
        from symgrad import __version__, numpy_code, render

        # plain tuples: no Line object per line of a large module (`numpy_code.lower`)
        lowered = numpy_code.lower(self.program, order, tuples=True)

        if self.derivatives:
            gradient_doc = [
                f"df/d{n} = {to_text(d)}" for n, d in self.derivatives.items()
            ]
        else:
            gradient_doc = ["(formulas omitted: the expression is too long to display)"]
        # a long expression is shown as the user wrote it (printing it is costly)
        shown = to_text(self.expression) if len(self.text) <= 2000 else self.text
        value_text = _short(shown, 2000)
        return render.render_module(
            lowered,
            expression=self.text.strip(),
            title=title or f"{_short(shown, 50)} and its gradient, in NumPy.",
            version=__version__,
            command=command or f"symgrad generate {_shell_quote(self.text.strip())}",
            convention=self.convention,
            value_doc=[f"f({_inputs_doc(self.inputs)}) = {value_text}"],
            gradient_doc=gradient_doc,
            notes=self.notes,
            free_early=free_early,
        )

    def evaluate(
        self, values: Mapping[str, Any], grad_output: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """Value and gradients at the given input values (NumPy arrays or numbers)."""
        missing = [n for n in self.inputs if n not in values]
        if missing:
            raise SymgradError(f"--at needs a value for {', '.join(missing)}")
        extra = [n for n in values if n not in self.inputs]
        if extra:
            raise SymgradError(
                f"--at gives {', '.join(extra)}, which the expression "
                f"does not use (inputs: {', '.join(self.inputs)})"
            )
        import numpy as np

        args = [values[n] for n in self.inputs]
        try:
            np.broadcast_shapes(*(np.shape(a) for a in args))
        except ValueError as exc:
            raise SymgradError(
                f"--at: the input shapes do not broadcast: {exc}"
            ) from None
        value, grads = self.program.value_and_grad(values, grad_output)
        return value, {n: grads[n] for n in self.wrt}

    def evaluate_second(self, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The Hessian of sum(f) at the values, each pair of wrt inputs once:
        [x][y] has shape x.shape + y.shape (the generated module's `hessian`)."""
        self.evaluate(values)  # the same checks of the values
        args = [values[n] for n in self.inputs]
        try:
            blocks = self.function.hessian(*args)
        except ValueError as exc:
            raise SymgradError(str(exc)) from None
        index = {n: i for i, n in enumerate(self.program.wrt)}
        return {
            a: {b: blocks[index[a]][index[b]] for b in self.wrt[i:]}
            for i, a in enumerate(self.wrt)
        }


def derive(
    text: str | Parsed,
    *,
    wrt: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    convention: str = "torch",
    order: int = 1,
) -> Derivation:
    """Parse `text` and differentiate it with respect to each input (or `wrt`);
    with `order` 2 the second derivatives too (`Derivation.second_derivatives`,
    `Derivation.hessian`)."""
    return _derive(text, wrt=wrt, inputs=inputs, convention=convention, order=order)


def _derive(
    text: str | Parsed,
    *,
    wrt: Sequence[str] | None,
    inputs: Sequence[str] | None,
    convention: str,
    order: int = 1,
) -> Derivation:
    if convention not in CONVENTIONS:
        raise SymgradError(f"unknown convention '{convention}': use torch or jax")
    if order not in (1, 2):
        raise SymgradError(f"order {order}: symgrad derives orders 1 and 2")
    parsed = text if isinstance(text, Parsed) else parse(text)
    names = _order_inputs(parsed, inputs)
    wanted = tuple(names if not wrt else wrt)
    if len(set(wanted)) != len(wanted):
        twice = next(n for i, n in enumerate(wanted) if n in wanted[:i])
        raise SymgradError(f"--wrt lists '{twice}' twice")
    known = set(names)
    for name in wanted:
        if name not in known:
            raise SymgradError(
                f"--wrt names '{name}', which is not an input "
                f"(inputs: {', '.join(names) or 'none'})"
            )
    size = len(parsed.graph.nodes)
    derivation = Derivation(
        text=parsed.text,
        expression=parsed.expr if size <= DISPLAY_NODES else _as_typed(parsed.text),
        inputs=names,
        wrt=wanted,
        convention=convention,
        parsed=parsed,
        order=order,
    )
    derivation.notes = _notes(parsed, convention)
    if order >= 2:
        derivation.notes += _second_order_notes(parsed)
    if size <= FORMULA_NODES:
        shown = program.build(parsed.expr, names, wanted, convention)
        grads = program.gradient_expressions(shown)
        derivation.derivatives = {n: _tidy(grads[n]) for n in wanted}
        if order >= 2:
            derivation.second_derivatives = _second_derivatives(grads, wanted)
    return derivation


def _second_derivatives(
    grads: Mapping[str, sp.Expr], wrt: Sequence[str]
) -> dict[str, dict[str, sp.Expr]]:
    """d/dy of each displayed df/dx, each pair once (x before y in wrt order): SymPy
    differentiates the formula, with the registry's readable partials for symgrad's
    own functions (display only: the numbers come from the graph)."""
    symbols = {n: sp.Symbol(n, real=True) for n in wrt}
    second: dict[str, dict[str, sp.Expr]] = {}
    for i, a in enumerate(wrt):
        for b in wrt[i:]:
            try:
                d = sp.diff(grads[a], symbols[b])
            except TypeError:  # a function without a formula for its derivative
                continue
            second.setdefault(a, {})[b] = _tidy(d)
    return second


def _second_order_notes(parsed: Parsed) -> list[str]:
    """What second order does at kinks that PyTorch's double backward does not."""
    from symgrad import registry
    from symgrad.graph import ancestors

    nodes = ancestors([parsed.output])
    ops = {node.op for node in nodes}
    notes = []
    if any(
        (registry.BY_NAME.get(op) or registry.BY_NAME["add"]).reduction for op in ops
    ):
        notes.append(
            "second derivatives through a reduction (sum, mean, norm, max(x), ...) "
            "read element by element on the Hessian's diagonal; for arrays its "
            "off-diagonal entries are there too (--at, hessian)"
        )
    if "norm" in ops:
        notes.append(
            "second order at norm(x) = 0: where the limit exists symgrad gives it "
            "(the Hessian of norm(x)**2 there is 2I; PyTorch's double backward gives "
            "nan), else nan as PyTorch"
        )
    if any(n.op == "pow" and not any(a.is_const for a in n.args) for n in nodes):
        notes.append(
            "second order of a**b at b = 0: as PyTorch's double backward, whose "
            "d/db of d/da is 0 there (the selected partial), though d2/dadb = 1/a: "
            "the Hessian is not symmetric at b = 0"
        )
    return notes


def _order_inputs(parsed: Parsed, inputs: Sequence[str] | None) -> tuple[str, ...]:
    """The inputs in `inputs`' order (--inputs), checked; else in order of appearance.

    Each name must be a valid input name: an identifier not starting with '_', and not
    a constant or a function of the language (the parser reads those as such, so an
    input of that name could never be used).
    """
    if not inputs:
        return parsed.inputs
    from symgrad import registry

    names = tuple(inputs)
    functions = set(registry.function_names())
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SymgradError(f"--inputs lists '{name}' twice")
        seen.add(name)
        if not name.isidentifier() or name.startswith("_"):
            raise SymgradError(f"--inputs: '{name}' is not a valid input name")
        if name in registry.CONSTANTS:
            raise SymgradError(
                f"--inputs: '{name}' is a constant "
                f"({', '.join(registry.CONSTANTS)}), not an input name"
            )
        if name in functions:
            raise SymgradError(
                f"--inputs: '{name}' is a function name, not an input name"
            )
    missing = [n for n in parsed.inputs if n not in seen]
    if missing:
        raise SymgradError(
            f"--inputs must list every input; missing: {', '.join(missing)}"
        )
    return names


def _tidy(expr: sp.Expr) -> sp.Expr:
    """The shortest form `symgrad.simplify` finds (bounded by the formula's size),
    with `where`'s branches kept as written."""
    return _into_branches(simplify.shorten(expr))


def _into_branches(expr: sp.Expr) -> sp.Expr:
    """`where(c, a, b) * r` as `where(c, a*r, b*r)`: the derivative through `where`
    is where(c, a', b'), which is what is computed (an a' that is nan where c is
    false never shows)."""

    def is_product_with_where(e: sp.Basic) -> bool:
        return isinstance(e, sp.Mul) and any(f.func is F.where for f in e.args)

    def push(e: sp.Mul) -> sp.Expr:
        factors = list(e.args)
        i = next(k for k, f in enumerate(factors) if f.func is F.where)
        cond, a, b = factors.pop(i).args
        rest = sp.Mul(*factors)
        return F.where(cond, a * rest, b * rest)

    def is_sum_of_wheres(e: sp.Basic) -> bool:
        conds = [t.args[0] for t in getattr(e, "args", ()) if t.func is F.where]
        return isinstance(e, sp.Add) and len(conds) > len(set(conds))

    def merge(e: sp.Add) -> sp.Expr:
        by_cond: dict[sp.Expr, tuple[sp.Expr, sp.Expr]] = {}
        others = []
        for t in e.args:
            if t.func is F.where:
                a, b = by_cond.get(t.args[0], (sp.S.Zero, sp.S.Zero))
                by_cond[t.args[0]] = (a + t.args[1], b + t.args[2])
            else:
                others.append(t)
        wheres = [F.where(c, a, b) for c, (a, b) in by_cond.items()]
        return sp.Add(*others, *wheres)

    try:
        return expr.replace(is_product_with_where, push).replace(
            is_sum_of_wheres, merge
        )
    except Exception:  # pragma: no cover - SymPy internals; keep the form as it is
        return expr


def _as_typed(text: str) -> sp.Expr:
    """A stand-in that prints as the user's text (expressions too large to show)."""
    return sp.Symbol(" ".join(text.split()))


def _notes(parsed: Parsed, convention: str) -> list[str]:
    """One note per function with a kink convention, in order of appearance."""
    from symgrad import registry
    from symgrad.graph import ancestors
    from symgrad.parse import to_sympy

    notes: list[str] = []
    seen: set[str] = set()
    for node in ancestors([parsed.output]):
        rule = registry.BY_NAME.get(node.op)
        if rule is None or not rule.is_public or rule.kink == SMOOTH:
            continue
        if rule.name in seen:
            continue
        if rule.name == "pow" and node.args[1].is_const:
            continue  # x**2 and x**0.5: no kink convention involved
        seen.add(rule.name)
        if rule.mask:
            notes.append(
                f"{to_text(to_sympy(node)).strip('()')} is piecewise constant: its "
                "derivative is 0 everywhere (PyTorch gives a comparison's "
                "output no gradient at all)"
            )
        elif convention == "jax" and rule.jax is not None:
            notes.append(
                f"{rule.signature}: JAX's convention is used here "
                f"(PyTorch's: {rule.kink})"
            )
        else:
            notes.append(f"{rule.signature}: {rule.kink}")
    return notes


def _latex_name(name: str) -> str:
    return latex_name(name)


def _inputs_doc(inputs: tuple[str, ...]) -> str:
    """The inputs as the docstring's `f(...)` lists them (`DOC_INPUTS`)."""
    if len(inputs) <= DOC_INPUTS:
        return ", ".join(inputs)
    return f"{', '.join(inputs[:6])}, ... ({len(inputs):,} inputs: see INPUTS)"


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
