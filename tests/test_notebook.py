"""docs/notebook.ipynb runs from top to bottom in a fresh kernel, as the docs build runs
it, and shows what it says: the derivation as math, the steps, a plot, and the numbers
of the module it generates, which are PyTorch's."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook's code cells by tag, after a run in a temporary folder."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    # stored without outputs: what the docs show is what a run gives
    assert all(not c.outputs and c.execution_count is None for c in cells)
    folder = tmp_path_factory.mktemp("notebook")
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()  # a cell that raises fails here (CellExecutionError)
    tagged = {tag: cell for cell in cells for tag in cell.metadata.get("tags", [])}
    assert set(tagged) >= {"derive", "steps", "plot", "generate", "module", "import"}
    assert (folder / "sin_exp_relu.py").is_file()
    return tagged


def _data(cell: Any) -> dict[str, Any]:
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.outputs
    return dict(results[0].data)


def test_the_derivation_shows_as_math_with_its_notes(executed) -> None:
    data = _data(executed["derive"])
    assert r"\frac{\partial f}{\partial x}" in data["text/latex"]
    assert "$$" in data["text/markdown"] and "relu'(0)" in data["text/markdown"]


def test_the_steps_show_the_backward_pass_at_the_point(executed) -> None:
    markdown = _data(executed["steps"])["text/markdown"]
    assert "**Backward trace.**" in markdown and "x = 0.5, y = 0.0" in markdown
    text = "".join(o.get("text", "") for o in executed["steps-text"].outputs)
    assert text.startswith("f(x) = cos(x**2)\n") and "backward trace" in text


def test_the_plot_is_inline(executed) -> None:
    png = base64.b64decode(_data(executed["plot"])["image/png"])
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (640, 400)


def test_the_generated_modules_numbers_are_pytorchs(executed) -> None:
    torch = pytest.importorskip("torch")
    shown = _data(executed["import"])["text/plain"]
    numbers = [float(n) for n in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", shown)]
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    value = torch.sin(x) * torch.exp(-y) + torch.relu(x - y)
    value.sum().backward()
    want = [*value.tolist(), x.grad.item(), *y.grad.tolist()]
    assert numbers == pytest.approx(want, rel=1e-7)  # the repr's 8 digits
    evaluated = _data(executed["evaluate"])["text/plain"]
    assert re.findall(r"-?\d+\.\d*", evaluated) == re.findall(r"-?\d+\.\d*", shown)
