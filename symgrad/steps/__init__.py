"""The backward pass, step by step (`symgrad derive --steps`).

- `symgrad.steps.tracing`: `trace(derivation, at=None)`, the forward trace, the
  backward trace with the rule behind each adjoint term, and the simplified result,
  all read off `Derivation.program` (the program the generated code runs);
- `symgrad.steps.numbers`: every step's value at `at`, from THE evaluator
  (`Program.evaluate`);
- `symgrad.steps.formats`: `format_steps(trace, fmt)` as text, LaTeX, Markdown or JSON.
"""

from symgrad.steps.formats import FORMATS, format_steps, latex_text
from symgrad.steps.tracing import Step, Trace, trace
from symgrad.values import value_latex, value_text

__all__ = [
    "FORMATS",
    "Step",
    "Trace",
    "format_steps",
    "latex_text",
    "trace",
    "value_latex",
    "value_text",
]
