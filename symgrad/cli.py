"""The `symgrad` command: derive, generate, check, functions.

Bad input exits with status 2 and says what is wrong on stderr (`symgrad: error: ...`,
with the expression and a caret under the column where there is one); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symgrad.errors import SymgradError

EXAMPLES = """\
examples:
  symgrad derive "cos(x**2)"
  symgrad derive "cos(x**2)" --at x=0.5
  symgrad derive "cos(x**2)" --steps --at x=0.5
  symgrad derive "sin(cos(norm(x)**2 + 1))" --at "x=[0.3,-0.7,1.1]"
  symgrad derive "x**2 + y**2" --wrt y --format latex
  symgrad derive "abs(x)" --convention jax --format json
  echo "clip(x, 1.5, 5.5)" | symgrad derive -
  symgrad generate "erf(x)" -o erf_grad.py
  symgrad generate "w*x + b" --wrt w,b -o linear.py
  symgrad check "max(x, y)"
  symgrad plot "clip(x, 1.5, 5.5)" --range 0,7 -o clip.png
  symgrad functions
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that errors in one line and remembers its own options.

    `options` maps each option string to whether it takes a value, `subcommands` each
    command to its parser, and `takes_expression` says whether there is an EXPR: what
    `_expression_last` needs to find EXPR, read from argparse's public API only.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: dict[str, bool] = {}
        self.subcommands: dict[str, _Parser] = {}
        self.takes_expression = False
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        for option in action.option_strings:
            self.options[option] = action.nargs != 0
        if action.dest == "expression" and not action.option_strings:
            self.takes_expression = True
        return action

    def option(self, word: str) -> tuple[str, bool] | None:
        """The option `word` names (`-o`, `--at=x=1`, `--conv`), and whether its value
        is attached (`=`); None for anything else."""
        if word in self.options:
            return word, False
        if not word.startswith("--"):
            return None
        name, equals, _ = word.partition("=")
        if name in self.options:
            return name, bool(equals)
        if self.allow_abbrev:  # argparse takes a unique prefix of a long option
            matches = [
                o for o in self.options if o.startswith("--") and o.startswith(name)
            ]
            if len(matches) == 1:
                return matches[0], bool(equals)
        return None

    def error(self, message: str) -> None:  # one line, status 2, like every bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> _Parser:
    from symgrad import __version__

    parser = _Parser(
        prog="symgrad",
        description="Derivatives of math expressions with PyTorch's conventions at "
        "kinks, and standalone NumPy modules that compute them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"symgrad {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )

    def add_command(name: str, **kwargs: Any) -> _Parser:
        command = commands.add_parser(name, **kwargs)
        parser.subcommands[name] = command
        return command

    derive = add_command(
        "derive",
        help="print an expression's derivatives (and their values with --at)",
        description="Print the derivative of EXPR with respect to each input.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _expression_options(derive)
    derive.add_argument(
        "--wrt",
        metavar="x,y",
        help="differentiate with respect to these inputs only (default: all)",
    )
    derive.add_argument(
        "--format", choices=("text", "latex", "markdown", "json"), default="text"
    )
    derive.add_argument(
        "--steps",
        action="store_true",
        help="show the backward pass step by step (the program the generated code "
        "runs), with numbers when --at is given",
    )
    derive.add_argument(
        "--at",
        metavar="x=0.5,y=[1,2,3]",
        help="evaluate the value and the gradient at these input values",
    )
    _order_option(derive, "each second partial derivative, and with --at the Hessian")
    derive.add_argument(
        "--mode",
        choices=("reverse", "forward"),
        default="reverse",
        help="with --steps: the backward pass (reverse, default) or forward mode "
        "(each step's tangent, the dual numbers)",
    )
    derive.add_argument(
        "--tangent",
        metavar="x=1,y=0",
        help="with --steps --mode forward: the inputs' tangents (default: 1 for the "
        "first input, 0 for the others, so that the result is df/dx)",
    )

    generate = add_command(
        "generate",
        help="write a standalone NumPy module for the value and gradient",
        description="Write a Python module (numpy only) with forward, backward and "
        "value_and_grad for EXPR.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _expression_options(generate)
    generate.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="the module file to write (or a folder for NAME.py)",
    )
    generate.add_argument("--name", help="module name (default: the file's name)")
    _order_option(generate, "also write hvp, hessian, hessian_matrix, hessian_sparse")
    generate.add_argument(
        "--wrt",
        metavar="x,y",
        help="the gradient with respect to these inputs only; the others are "
        "parameters, for which no gradient is computed (default: all)",
    )
    generate.add_argument(
        "--force",
        action="store_true",
        help="overwrite a file that symgrad did not generate (never a pipe or device)",
    )

    check = add_command(
        "check",
        help="check the generated code against finite differences, mpmath and PyTorch",
        description="Check the gradient code generated for EXPR against "
        "central finite differences, high-precision mpmath and (when installed) "
        "PyTorch autograd, at random points and at the expression's kinks. Exit "
        "status 1 on disagreement.",
    )
    _expression_options(check)
    check.add_argument("--points", type=int, default=20, help="random points (20)")
    check.add_argument("--seed", type=int, default=0)
    _order_option(check, "also check jvp, hvp and the Hessian")

    plot = add_command(
        "plot",
        help="draw an expression and its derivative to a PNG, kinks marked",
        description="Draw EXPR and its derivative over --range into a PNG, marking "
        "the value the convention picks at each kink (needs matplotlib: "
        "pip install matplotlib).",
    )
    _plot_options(plot)

    functions = add_command(
        "functions",
        help="list the functions symgrad knows",
        description="List the function catalog.",
    )
    functions.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _plot_options(parser: argparse.ArgumentParser) -> None:
    """The options of `symgrad plot` (`--range -3,3` works: see `_expression_last`)."""
    parser.add_argument(
        "expression",
        metavar="EXPR",
        help="the expression, e.g. 'abs(x)'; '-' reads standard input",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE.png", help="the PNG to write"
    )
    parser.add_argument(
        "--range",
        default="-3,3",
        metavar="LO,HI",
        help="the interval the input is varied over (default: -3,3)",
    )
    parser.add_argument(
        "--wrt",
        metavar="NAME",
        help="the input to vary (needed when there are several; the others are "
        "fixed with --at)",
    )
    parser.add_argument(
        "--at",
        metavar="y=1",
        help="fixed values for the inputs that are not varied",
    )
    _convention_option(parser)


def _order_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help=f"2: second derivatives too ({what})",
    )


def _convention_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--convention",
        choices=("torch", "jax"),
        default="torch",
        help="values at kinks: PyTorch's (default) or JAX's",
    )


def _expression_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "expression",
        metavar="EXPR",
        help="the expression, e.g. 'cos(x**2)'; '-' reads standard input",
    )
    parser.add_argument(
        "--inputs",
        metavar="x,y",
        help="input names in argument order (default: order of first appearance)",
    )
    _convention_option(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_expression_last(parser, words))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except SymgradError as exc:
        print(f"symgrad: error: {exc.format()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    except BrokenPipeError:  # e.g. `symgrad functions | head`: the reader is gone
        _discard_stdout()
        return 0


def _discard_stdout() -> None:
    """Send what is left for a standard output whose reader is gone to os.devnull.

    Python's own recipe: the interpreter's last flush then succeeds quietly, and
    standard error (which the caller of `main` may still use) stays open.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor: nothing to do
        pass


def _expression_last(parser: _Parser, argv: list[str]) -> list[str]:
    """`argv` with an EXPR that starts with a minus sign moved behind `--`.

    argparse takes `-x**2` for an unknown option. A command's EXPR is the first word
    after the command that is neither an option the command knows nor an option's
    value; when it starts with a single '-' and no plain word could be EXPR instead,
    it is moved to the end, after `--`, where argparse reads it as EXPR. An option's
    value that starts with '-' is attached to it (`--range -3,3` becomes
    `--range=-3,3`). Everything else is left as it was, so `-h` and the errors for
    unknown options are argparse's own. (An EXPR that starts with `--`, say `--x`,
    is taken for an option: write `-- --x`.)
    """
    start = next((i for i, word in enumerate(argv) if not word.startswith("-")), None)
    if start is None or argv[start] not in parser.subcommands:
        return argv
    command = parser.subcommands[argv[start]]
    if not command.takes_expression:
        return argv
    words = argv[start + 1 :]
    out: list[str] = []
    expression: str | None = None  # the first word that starts with '-' but no option
    slot = 0  # where it was, among the other words
    plain = False  # a word argparse reads as EXPR anyway
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":  # what follows is EXPR, as the user said
            out += words[i - 1 :]
            plain = True
            break
        option = command.option(word)
        if option is not None:
            name, attached = option
            value = words[i] if i < len(words) else None
            if command.options[name] and not attached and value is not None:
                if not value.startswith("-") or value == "-":
                    out += [word, value]
                    i += 1
                    continue
                if value != "--" and command.option(value) is None:
                    out.append(
                        f"{word}={value}" if word.startswith("--") else word + value
                    )
                    i += 1
                    continue
            out.append(word)
        elif word.startswith("-") and word != "-" and not word.startswith("--"):
            if expression is None:
                expression, slot = word, len(out)
            else:
                out.append(word)  # a second one: argparse says it is unknown
        else:
            plain = plain or not word.startswith("-") or word == "-"
            out.append(word)
    if expression is not None and not plain:
        out += ["--", expression]
    elif expression is not None:  # another word is EXPR: leave this one where it was
        out.insert(slot, expression)
    return argv[: start + 1] + out


def expression_text(args: argparse.Namespace) -> str:
    """EXPR, or standard input for '-' (read once)."""
    if getattr(args, "expression_text", None) is None:
        text = args.expression
        if text == "-":
            text = sys.stdin.read()
        args.expression_text = text.strip()
    return args.expression_text


def _names(option: str | None) -> list[str] | None:
    if option is None:
        return None
    return [n.strip() for n in option.split(",") if n.strip()]


def _derive(args: argparse.Namespace) -> Any:
    from symgrad.derivation import derive

    return derive(
        expression_text(args),
        wrt=_names(getattr(args, "wrt", None)),
        inputs=_names(args.inputs),
        convention=args.convention,
        order=getattr(args, "order", 1),
    )


def cmd_derive(args: argparse.Namespace) -> int:
    from symgrad.printing import second_label, second_latex_rows

    derivation = _derive(args)
    if args.at or args.steps or args.format == "json":  # NumPy only when needed
        from symgrad.values import format_value, jsonable, parse_values
    if args.steps:
        from symgrad.steps import format_steps, trace

        values = parse_values(args.at) if args.at else None
        tangents = parse_values(args.tangent) if args.tangent else None
        steps = trace(derivation, at=values, mode=args.mode, tangents=tangents)
        print(format_steps(steps, args.format).rstrip("\n"))
        return 0
    if args.mode != "reverse" or args.tangent:
        raise SymgradError("--mode and --tangent go with --steps")
    at = None
    second: dict[str, dict[str, Any]] = {}
    if args.at:
        values = parse_values(args.at)
        value, grads = derivation.evaluate(values)
        at = (values, value, grads)
        if derivation.order >= 2:
            second = derivation.evaluate_second(values)
    pairs = [(a, b, h) for a, by in second.items() for b, h in by.items()]
    if args.format == "markdown":
        print(derivation.markdown().rstrip("\n"))
        if at is not None:
            values, value, grads = at
            where = ", ".join(f"{k} = {format_value(v)}" for k, v in values.items())
            print(f"\nAt {where}: f = {format_value(value)}", end="")
            for name in derivation.wrt:
                print(f", df/d{name} = {format_value(grads[name])}", end="")
            for a, b, h in pairs:
                print(f", {second_label(a, b)} = {format_value(h)}", end="")
            print(".")
        return 0
    if args.format == "json":
        data = derivation.to_dict()
        if at is not None:
            values, value, grads = at
            data["at"] = {
                "inputs": {k: jsonable(v) for k, v in values.items()},
                "value": jsonable(value),
                "gradient": {k: jsonable(grads[k]) for k in derivation.wrt},
            }
            if second:
                data["at"]["second_derivatives"] = {
                    a: {b: jsonable(h) for b, h in by.items()}
                    for a, by in second.items()
                }
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    if args.format == "latex":
        print(derivation.latex())
        if at is not None:
            values, value, grads = at
            where = ", ".join(f"{k} = {format_value(v)}" for k, v in values.items())
            print(rf"f = {format_value(value)} \quad \text{{at }} {where}")
            for name in derivation.wrt:
                print(
                    rf"\frac{{\partial f}}{{\partial {name}}} = "
                    f"{format_value(grads[name])}"
                )
            for (left, _), (_, _, h) in zip(
                second_latex_rows(derivation.second_derivatives), pairs, strict=False
            ):
                print(f"{left} = {format_value(h)}")
        for note in derivation.notes:
            print(f"% note: {note}")
        return 0
    for line in derivation.text_lines():
        print(line)
    if at is not None:
        values, value, grads = at
        print(
            "at "
            + ", ".join(f"{k} = {format_value(v)}" for k, v in values.items())
            + ":"
        )
        print(f"  f = {format_value(value)}")
        for name in derivation.wrt:
            print(f"  df/d{name} = {format_value(grads[name])}")
        for a, b, h in pairs:
            print(f"  {second_label(a, b)} = {format_value(h)}")
    for note in derivation.notes:
        print(f"note: {note}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from symgrad.generate import write_module

    derivation = _derive(args)
    path = write_module(
        derivation,
        args.output,
        name=args.name,
        force=args.force,
        argv=_regenerate_command(args),
        order=args.order,
        progress=True,  # on standard error, when it is a terminal
    )
    print(f"wrote {path}")
    return 0


def _regenerate_command(args: argparse.Namespace) -> list[str]:
    import shlex

    text = expression_text(args)
    quoted = shlex.quote(text) if len(text) <= 200 else "-"
    options = ["-o", shlex.quote(args.output)]
    if args.name:
        options += ["--name", shlex.quote(args.name)]
    if args.inputs:
        options += ["--inputs", shlex.quote(args.inputs)]
    if args.wrt:
        options += ["--wrt", shlex.quote(args.wrt)]
    if args.convention != "torch":
        options += ["--convention", args.convention]
    if args.order != 1:
        options += ["--order", str(args.order)]
    if text.startswith("--"):  # `--x` would read as an option: EXPR last, after --
        parts = ["symgrad", "generate", *options, "--", quoted]
    else:
        parts = ["symgrad", "generate", quoted, *options]
    if quoted == "-":  # a long expression: read it back from the module itself
        module = Path(args.output).stem if args.output.endswith(".py") else args.name
        parts = [
            f'python -c "from {module} import EXPRESSION; print(EXPRESSION)" |',
            *parts,
        ]
    return parts


def cmd_check(args: argparse.Namespace) -> int:
    from symgrad.check import run_check

    derivation = _derive(args)
    # progress on standard error, when it is a terminal
    report = run_check(derivation, points=args.points, seed=args.seed, progress=True)
    print(report.table())
    ok = report.ok
    if args.order >= 2:
        from symgrad.check import run_second_order_check

        second = run_second_order_check(derivation, points=args.points, seed=args.seed)
        print("\nsecond order (jvp, hvp, Hessian):")
        print(second.table())
        ok = ok and second.ok
    return 0 if ok else 1


def cmd_functions(args: argparse.Namespace) -> int:
    from symgrad.catalog import catalog_rows

    rows = catalog_rows()
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max(len(r["signature"]) for r in rows)
    for row in rows:
        print(f"{row['signature']:<{width}}  {row['description']}")
        for name, rule in row["derivative"].items():
            print(f"{'':<{width}}    d/d{name} = {rule}")
        if row["kink"]:
            print(f"{'':<{width}}    kink: {row['kink']}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from symgrad.derivation import derive
    from symgrad.plot import parse_range, plot_data, render, require_matplotlib

    require_matplotlib()  # before any work: say how to install it
    derivation = derive(expression_text(args), convention=args.convention)
    lo, hi = parse_range(args.range)
    fixed = _plot_fixed(args.at)
    data = plot_data(derivation, wrt=args.wrt, lo=lo, hi=hi, fixed=fixed)
    render(data, args.output)
    print(f"wrote {args.output}")
    return 0


def _plot_fixed(text: str | None) -> dict[str, float]:
    """`--at y=1` of `symgrad plot`: a number for each input that is not varied."""
    if not text:
        return {}
    import numpy as np

    from symgrad.values import parse_values

    fixed = {}
    for name, value in parse_values(text).items():
        if np.ndim(value) != 0:
            raise SymgradError(f"--at: {name} must be a single number to plot")
        fixed[name] = float(value)
    return fixed


_COMMANDS = {
    "plot": cmd_plot,
    "derive": cmd_derive,
    "generate": cmd_generate,
    "check": cmd_check,
    "functions": cmd_functions,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
