"""`symgrad plot`: the seed plots as images, kinks at the convention's values."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import compiled
from PIL import Image

import symgrad
from symgrad import plot
from symgrad.cli import main
from symgrad.examples import SEEDS

# How each seed is plotted: the range, and for several inputs which one varies.
SEED_PLOTS = {
    "clip": {"lo": 0.0, "hi": 7.0},
    "sum_of_squares": {"wrt": "x", "fixed": {"y": 1.0}},
    "lt": {"wrt": "x", "fixed": {"y": 1.0}},
}
ORANGE = (0xFF, 0x7F, 0x0E)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"), dtype=np.int32)


def _near(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return bool(np.abs(pixel - np.array(colour)).max() <= tolerance)


@pytest.mark.parametrize("name", list(SEEDS))
def test_every_seed_plot_renders(name: str, tmp_path: Path) -> None:
    expression, _ = SEEDS[name]
    options = dict(SEED_PLOTS.get(name, {}))
    data = plot.plot_data(symgrad.derive(expression), **options)
    path = tmp_path / f"{name}.png"
    plot.render(data, path)
    pixels = _pixels(path)
    assert pixels.shape == (400, 640, 3)
    not_white = (pixels < 250).any(axis=2).mean()
    assert 0.02 < not_white < 0.5, not_white  # axes, text and two curves
    blue = (np.abs(pixels - np.array([0x1F, 0x77, 0xB4])).max(axis=2) < 30).sum()
    red = (np.abs(pixels - np.array([0xD6, 0x27, 0x28])).max(axis=2) < 30).sum()
    assert blue > 200 and red > 200, (blue, red)  # f and df/dx are both drawn


def test_plotted_data_is_the_generated_modules() -> None:
    derivation = symgrad.derive("cos(x**2)")
    data = plot.plot_data(derivation, lo=-2.0, hi=2.0, points=101)
    assert data.kinks == [] and data.name == "x"
    np.testing.assert_array_equal(data.x, np.linspace(-2.0, 2.0, 101))
    value, grads = compiled(derivation).value_and_grad(data.x)
    np.testing.assert_array_equal(data.value, value)
    np.testing.assert_array_equal(data.grad, grads[0])


@pytest.mark.parametrize(
    ("convention", "at_zero"), [("torch", 0.0), ("jax", 1.0)], ids=["torch", "jax"]
)
def test_abs_marks_its_kink_at_the_conventions_value(
    convention: str, at_zero: float, tmp_path: Path
) -> None:
    data = plot.plot_data(symgrad.derive("abs(x)", convention=convention))
    [kink] = data.kinks
    assert (kink.x, kink.value, kink.grad) == (0.0, 0.0, at_zero)
    assert kink.left[1] == -1.0 and kink.right[1] == 1.0 and not kink.jumps
    assert kink.sources == ("abs(x)",)
    # df/dx is broken at the kink (NaN), f is not
    at = np.flatnonzero(data.x == 0.0)
    assert np.isnan(data.grad[at]).all() and (data.value[at] == 0.0).all()
    path = tmp_path / "abs.png"
    [(px, py)] = plot.render(data, path)
    pixels = _pixels(path)
    assert _near(pixels[round(py), round(px)], ORANGE)
    # the marker sits at the convention's value: one unit above 0 for JAX
    other = plot.plot_data(symgrad.derive("abs(x)", convention="torch"))
    [(_, py_torch)] = plot.render(other, tmp_path / "torch.png")
    assert (py_torch - py > 20) == (convention == "jax")


@pytest.mark.parametrize(
    ("convention", "at_bounds"), [("torch", 1.0), ("jax", 0.5)], ids=["torch", "jax"]
)
def test_clip_marks_its_bounds(convention: str, at_bounds: float, tmp_path) -> None:
    derivation = symgrad.derive("clip(x, 1.5, 5.5)", convention=convention)
    data = plot.plot_data(derivation, lo=0.0, hi=7.0)
    assert [k.x for k in data.kinks] == [1.5, 5.5]
    assert [k.grad for k in data.kinks] == [at_bounds, at_bounds]
    assert [k.value for k in data.kinks] == [1.5, 5.5]
    assert [(k.left[1], k.right[1]) for k in data.kinks] == [(0.0, 1.0), (1.0, 0.0)]
    path = tmp_path / "clip.png"
    for px, py in plot.render(data, path):
        assert _near(_pixels(path)[round(py), round(px)], ORANGE)


def test_jumps_ties_and_fixed_inputs() -> None:
    floor = plot.plot_data(symgrad.derive("floor(x)"), lo=-2.5, hi=2.5)
    assert [k.x for k in floor.kinks] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert all(k.jumps and k.grad == 0.0 for k in floor.kinks)
    assert [k.value for k in floor.kinks] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    rounded = plot.plot_data(symgrad.derive("round(x)"), lo=-1.0, hi=2.0)
    assert [k.x for k in rounded.kinks] == [-0.5, 0.5, 1.5]
    sign = plot.plot_data(symgrad.derive("sign(x) + relu(x - 1)"))
    assert [(k.x, k.grad) for k in sign.kinks] == [(0.0, 0.0), (1.0, 0.0)]
    ties = plot.plot_data(symgrad.derive("max(x, y)"), wrt="x", fixed={"y": 1.0})
    assert [(k.x, k.grad) for k in ties.kinks] == [(1.0, 0.5)]
    assert ties.fixed == {"y": 1.0}
    less = plot.plot_data(symgrad.derive("x < y"), wrt="x", fixed={"y": 2.0})
    [kink] = less.kinks
    assert (kink.x, kink.value, kink.left[0], kink.grad) == (2.0, 0.0, 1.0, 0.0)
    # a reduction of a one-element x: norm(x) is abs(x), max(x) is x
    norm = plot.plot_data(symgrad.derive("norm(x)"), lo=-1.0, hi=1.0)
    assert [(k.x, k.grad) for k in norm.kinks] == [(0.0, 0.0)]
    np.testing.assert_array_equal(norm.value[~np.isnan(norm.value)], abs(norm.x))


def test_same_input_same_bytes(tmp_path: Path) -> None:
    data = plot.plot_data(symgrad.derive("clip(x, 1.5, 5.5)"), lo=0.0, hi=7.0)
    plot.render(data, tmp_path / "a.png")
    plot.render(data, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "abs.png"
    argv = ["plot", "abs(x)", "--range", "-3,3", "--convention", "jax", "-o", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert _pixels(out).shape == (400, 640, 3)
    argv = ["plot", "x*y", "--wrt", "y", "--at", "x=2", "-o", str(tmp_path / "xy.png")]
    assert main(argv) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x*y"], "choose the one to vary with --wrt"),
        (["x*y", "--wrt", "x"], "--at needs a value for y"),
        (["x*y", "--wrt", "z", "--at", "y=1"], "'z', which is not an input"),
        (["x", "--at", "y=1"], "--at gives y"),
        (["x*y", "--wrt", "x", "--at", "y=[1,2]"], "y must be a single number"),
        (["x", "--range", "3,-3"], "need finite LO < HI"),
        (["x", "--range", "a,b"], "expected LO,HI"),
        (["sinn(x)"], "unknown function 'sinn'"),
    ],
)
def test_bad_input_is_one_error(argv: list[str], message: str, tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["plot", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symgrad: error: ") and message in err, err
    assert "Traceback" not in err and not out.exists()


def test_without_matplotlib_says_how_to_install(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    out = tmp_path / "abs.png"
    assert main(["plot", "abs(x)", "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "symgrad: error: plotting needs matplotlib: pip install matplotlib"
    ]
    assert not out.exists()
    data = plot.plot_data(symgrad.derive("abs(x)"))  # the numbers need no matplotlib
    with pytest.raises(plot.MissingMatplotlib, match="pip install matplotlib"):
        plot.render(data, out)
