"""The seed examples: the expressions symgrad started from, and their generated modules.

`python -m symgrad.examples` (re)writes generated/<name>.py for each; the tests check
that the committed files are exactly what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

# name -> (expression, where it comes from)
SEEDS: dict[str, tuple[str, str]] = {
    "erf": ("erf(x)", "seed 000: torch.erf and its gradient 2/sqrt(pi)*exp(-x**2)"),
    "abs": ("abs(x)", "seeds 000/001: abs's gradient -1, 0, 1 at x = -1, 0, 1"),
    "exp": ("exp(x)", "seeds 001/003: torch.exp and its gradient"),
    "sum_of_squares": ("x**2 + y**2", "seed 002: gradients 2x and 2y"),
    "max": ("max(x)", "seed 002: ties share the gradient evenly"),
    "clip": ("clip(x, 1.5, 5.5)", "seed 002: clip's gradient on 1..7"),
    "cos_x2": ("cos(x**2)", "seed 004: cos(x^2) at x = 0.5, step by step"),
    "lt": (
        "x < y",
        "seed 001: torch.lt has no gradient (the seed's [1, 0, 0] is wrong)",
    ),
    "sin_cos_norm": ("sin(cos(norm(x)**2 + 1))", "seed 004: a vector x"),
    "mean_square": ("mean((x + 2)*(x + 2)*2)", "seed 004: mean of a product"),
}
# name -> (expression, what it shows, extra `symgrad generate` options)
SECOND_ORDER: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sin_cos_norm_order2": (
        "sin(cos(norm(x)**2 + 1))",
        "seed 004 with hvp and Hessians (the limit at x = 0)",
        ("--order", "2"),
    ),
}


def generate_all(folder: Path) -> list[Path]:
    """Write every seed's module into `folder` (as `symgrad generate` would)."""
    from symgrad.cli import main

    written = []
    jobs = [(n, e, ()) for n, (e, _) in SEEDS.items()]
    jobs += [(n, e, options) for n, (e, _, options) in SECOND_ORDER.items()]
    for name, expression, options in jobs:
        path = folder / f"{name}.py"
        code = main(["generate", expression, "-o", str(path), *options])
        if code != 0:
            raise SystemExit(code)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("generated")
    generate_all(target)
