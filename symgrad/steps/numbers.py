"""Every step's value at given input values, from THE evaluator.

`evaluate_steps(derivation, at)` first calls `Derivation.evaluate(at)`, which checks
the values (missing or extra inputs, shapes that do not broadcast) and gives f and each
df/dx as the generated module returns them (each gradient shaped like its input). Then
`Program.evaluate(at)` gives the value of every node of the forward trace and of every
adjoint node of the default backward pass (seed 1: the gradient of sum(f)). Both are
the one evaluator (`symgrad.evaluate`), so a step's value is the generated code's, bit
for bit; nothing is compiled, exec'd or profiled here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symgrad.derivation import Derivation
from symgrad.graph import Node
from symgrad.values import as_number


@dataclass
class Numbers:
    """The values of one evaluation: f, the gradients, and every node's value."""

    at: dict[str, np.ndarray]  # the input values
    value: Any  # f
    gradients: dict[str, Any]  # df/d<input>, for each input of `derivation.wrt`
    nodes: dict[int, Any]  # node id -> value: forward nodes and adjoint nodes

    def forward(self, node: Node) -> Any:
        """The value of a forward node (a mask as 0.0/1.0)."""
        return as_number(self.nodes[node.id])

    def adjoint(self, node: Node, adjoint: Node | None) -> Any:
        """The value of `node`'s adjoint (None: no gradient flows back, 0), shaped
        like `node`; an input's is its gradient as `value_and_grad` returns it."""
        if node.is_input and node.name in self.gradients:
            return self.gradients[node.name]
        shape = np.shape(self.nodes[node.id])
        value = 0.0 if adjoint is None else self.nodes[adjoint.id]
        value = as_number(value)
        if np.shape(value) != shape:  # a folded constant, or the seed 1
            try:
                value = np.broadcast_to(value, shape).copy()
            except ValueError:
                pass
        return value


def evaluate_steps(derivation: Derivation, at: Mapping[str, Any]) -> Numbers:
    """Evaluate `derivation`'s program at `at` (see the module docstring).

    Raises `SymgradError` where `Derivation.evaluate` does.
    """
    value, gradients = derivation.evaluate(at)
    nodes = derivation.program.evaluate(at)
    return Numbers(
        at={n: np.asarray(at[n]) for n in derivation.inputs},
        value=value,
        gradients=dict(gradients),
        nodes=nodes,
    )


__all__ = ["Numbers", "evaluate_steps"]
