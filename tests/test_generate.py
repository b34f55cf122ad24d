"""`symgrad generate`: standalone modules, safe writing, determinism, seeds' files."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: F401
from conftest import compiled

import symgrad
from symgrad.examples import SEEDS, generate_all
from symgrad.oracles import torch_value_and_grad
from symgrad.parse import parse

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_writes_an_importable_module(cli, tmp_path) -> None:
    path = tmp_path / "pkg" / "sumsq.py"
    result = cli("generate", "x**2 + y**2", "-o", str(path))
    assert result.returncode == 0, result.stderr
    module = load(path)
    assert module.INPUTS == ("x", "y")
    assert module.EXPRESSION == "x**2 + y**2"
    value, (gx, gy) = module.value_and_grad([1.0, 2.0], 3.0)
    np.testing.assert_array_equal(value, [10.0, 13.0])
    np.testing.assert_array_equal(gx, [2.0, 4.0])
    assert np.shape(gy) == () and float(gy) == 12.0  # summed back to y's shape
    gx, gy = module.backward([1.0, 2.0], 3.0, grad_output=np.array([1.0, -1.0]))
    np.testing.assert_array_equal(gx, [2.0, -4.0])
    assert float(gy) == 0.0
    np.testing.assert_array_equal(module.forward(2, 1), 5.0)


def test_module_needs_only_numpy(tmp_path) -> None:
    path = tmp_path / "mod.py"
    symgrad_module = symgrad.derive("softplus(x) * erf(y) + max(x) * lgamma(y)")
    from symgrad.generate import write_module

    write_module(symgrad_module, path)
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('mod', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "v, g = m.value_and_grad([0.5, 1.5], [1.0, 2.0])\n"
        "bad = [n for n in ('sympy', 'symgrad', 'torch', 'jinja2', 'scipy', 'mpmath')"
        " if n in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_generation_is_deterministic(tmp_path) -> None:
    from symgrad.cli import main

    a, b = tmp_path / "a" / "m.py", tmp_path / "b" / "m.py"
    for path in (a, b):
        assert main(["generate", "sin(cos(norm(x)**2 + 1)) * y", "-o", str(path)]) == 0
    assert a.read_text().replace(str(a), "") == b.read_text().replace(str(b), "")
    # and in a fresh process, byte for byte
    argv = ["generate", "sin(cos(norm(x)**2 + 1)) * y", "-o", str(a)]
    script = f"from symgrad.cli import main; import sys; sys.exit(main({argv!r}))"
    first = a.read_bytes()
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    assert a.read_bytes() == first


def test_refuses_to_overwrite_foreign_files(cli, tmp_path) -> None:
    path = tmp_path / "mine.py"
    path.write_text("print('precious')\n")
    result = cli("generate", "x**2", "-o", str(path))
    assert result.returncode == 2 and "--force" in result.stderr
    assert path.read_text() == "print('precious')\n"
    assert cli("generate", "x**2", "-o", str(path), "--force").returncode == 0
    assert "symgrad-generated module" in path.read_text()
    # a symgrad file is overwritten without --force
    assert cli("generate", "x**3", "-o", str(path)).returncode == 0
    assert load(path).EXPRESSION == "x**3"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_module_names_must_be_identifiers(cli, tmp_path) -> None:
    for bad in ("2fast.py", "my-module.py", "class.py"):
        result = cli("generate", "x", "-o", str(tmp_path / bad))
        assert result.returncode == 2, bad
        assert "not a valid Python identifier" in result.stderr
    assert cli("generate", "x", "-o", str(tmp_path), "--name", "good").returncode == 0
    assert (tmp_path / "good.py").exists()
    result = cli("generate", "x", "-o", str(tmp_path), "--name", "bad-name")
    assert result.returncode == 2


def test_reserved_input_names_are_refused(cli, tmp_path) -> None:
    result = cli("generate", "np * x", "-o", str(tmp_path / "m.py"))
    assert result.returncode == 2 and "a name of the generated module" in result.stderr


def test_generated_code_is_ruff_clean(tmp_path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    from symgrad.cli import main

    exprs = [
        "x < y",
        "2",
        "sin(cos(norm(x)**2 + 1))",
        "clip(x, lo, hi) * where(x > y, x, y)",
        " + ".join(f"(x{i} - {i})**2" for i in range(40)),
    ]
    for i, text in enumerate(exprs):
        assert main(["generate", text, "-o", str(tmp_path / f"m{i}.py")]) == 0
    result = subprocess.run(
        [
            ruff,
            "check",
            "--no-cache",
            "--select",
            "E,F,W,B,UP",
            "--line-length",
            "88",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shapes_dtypes_and_inputs() -> None:
    module = compiled(symgrad.derive("x * y + sum(x)"))
    value, (gx, gy) = module.value_and_grad(np.ones((2, 3)), np.arange(3.0))
    assert gx.shape == (2, 3) and gy.shape == (3,)
    value, (gx, gy) = module.value_and_grad(2.0, 3.0)
    assert gx.shape == () and gy.shape == () and isinstance(gx, np.ndarray)
    value, (gx, gy) = module.value_and_grad(np.float32([1, 2]), np.float32(3))
    assert gx.dtype == np.float32 and gy.dtype == np.float32
    assert np.asarray(value).dtype == np.float32
    value, (gx, gy) = module.value_and_grad([1, 2], 3)  # ints and lists: float64
    assert gx.dtype == np.float64
    _, want = torch_value_and_grad(
        parse("x * y + sum(x)").expr,
        ("x", "y"),
        {"x": np.ones((2, 3)), "y": np.arange(3.0)},
    )
    _, got = module.value_and_grad(np.ones((2, 3)), np.arange(3.0))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_x_times_sum_x_is_pytorchs_vjp() -> None:
    module = compiled(symgrad.derive("x * sum(x)"))
    x = np.array([1.0, -2.0, 0.5])
    upstream = np.array([0.3, 1.0, -2.0])
    _, (got,) = module.value_and_grad(x, grad_output=upstream)
    _, (want,) = torch_value_and_grad(
        parse("x * sum(x)").expr, ("x",), {"x": x}, grad_output=upstream
    )
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_stable_forms_at_800() -> None:
    import warnings

    x = np.array([-800.0, -50.0, 0.0, 50.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in [
            "sigmoid(x)",
            "softplus(x)",
            "logsumexp(x)",
            "log1p(x)",
            "expm1(x)",
            "silu(x)",
            "abs(x)",
            "norm(x)",
            "sqrt(x)",
            "prod(x)",
        ]:
            derivation = symgrad.derive(text)
            value, (grad,) = compiled(derivation).value_and_grad(x)
            want_value, (want,) = torch_value_and_grad(
                derivation.expression, ("x",), {"x": x}
            )
            np.testing.assert_allclose(value, want_value, rtol=1e-12)
            np.testing.assert_allclose(grad, want, rtol=1e-12)
            if text in ("sigmoid(x)", "softplus(x)", "logsumexp(x)", "silu(x)"):
                assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))


def test_prod_with_zeros_is_exact() -> None:
    module = compiled(symgrad.derive("prod(x)"))
    _, (grad,) = module.value_and_grad(np.array([0.0, 2.0, -3.0]))
    np.testing.assert_array_equal(grad, [-6.0, 0.0, 0.0])
    _, (grad,) = module.value_and_grad(np.array([0.0, 2.0, 0.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0])


# --- generated/: the seeds' modules, committed and kept fresh -----------------------


@pytest.mark.parametrize("name", list(SEEDS))
def test_generated_seed_module_agrees_with_pytorch(name: str) -> None:
    expression, _ = SEEDS[name]
    module = load(GENERATED / f"{name}.py")
    assert module.EXPRESSION == expression
    parsed = parse(expression)
    rng = np.random.default_rng(0)
    cases = [[rng.uniform(-3, 3, size=6) for _ in module.INPUTS] for _ in range(5)]
    cases.append([np.array([-1.0, 0.0, 1.0, 1.5, 5.5, 4.0]) for _ in module.INPUTS])
    cases.append([np.array([1.0, 2.0, 3.0, 4.0, 4.0, 0.0]) for _ in module.INPUTS])
    cases.append([np.zeros(3) for _ in module.INPUTS])
    for args in cases:
        value, grads = module.value_and_grad(*args)
        want_value, want = torch_value_and_grad(
            parsed.expr, module.INPUTS, dict(zip(module.INPUTS, args, strict=True))
        )
        np.testing.assert_allclose(
            np.asarray(value, dtype=float), want_value, rtol=1e-12, atol=1e-15
        )
        for g, w in zip(grads, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


def test_generated_folder_is_fresh(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    generate_all(Path("generated"))
    fresh = sorted(p.name for p in (tmp_path / "generated").glob("*.py"))
    committed = sorted(p.name for p in GENERATED.glob("*.py"))
    assert fresh == committed
    stale = [
        n
        for n in fresh
        if (tmp_path / "generated" / n).read_bytes() != (GENERATED / n).read_bytes()
    ]
    assert not stale, f"stale in generated/: {stale}; run python -m symgrad.examples"


def test_generate_wrt_makes_the_other_inputs_parameters(cli, tmp_path) -> None:
    path = tmp_path / "linear.py"
    result = cli("generate", "w*x + b", "--wrt", "w,b", "-o", str(path), "--order", "2")
    assert result.returncode == 0, result.stderr
    module = load(path)
    assert module.INPUTS == ("w", "x", "b") and module.WRT == ("w", "b")
    assert "--wrt" in path.read_text()  # the regenerate command says so
    x = np.array([1.0, 2.0, 4.0])
    value, grads = module.value_and_grad(2.0, x, 0.5)
    assert len(grads) == 2  # nothing for x
    _, want = torch_value_and_grad(
        "w*x + b", ("w", "x", "b"), {"w": 2.0, "x": x, "b": 0.5}
    )
    np.testing.assert_array_equal(grads[0], want[0])
    np.testing.assert_array_equal(grads[1], want[2])
    _, tangent = module.jvp((2.0, x, 0.5), (1.0, 0.0))
    np.testing.assert_array_equal(tangent, x)
    assert "_grad_x" not in path.read_text()


def test_a_gradient_that_is_a_forward_value_is_not_deleted_first() -> None:
    """0*exp(z)'s gradient is the node 0*exp(z) itself (hash-consed): the forward
    pass must keep it for the grad_output=None branch."""
    module = compiled(symgrad.derive("0*(e ^ z) + e"))
    value, (grad,) = module.value_and_grad(1.0)
    _, want = torch_value_and_grad("0*(e ^ z) + e", ("z",), {"z": 1.0})
    np.testing.assert_array_equal(grad, want[0])
    np.testing.assert_array_equal(value, np.e)
