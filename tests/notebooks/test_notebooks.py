"""The teaching notebooks (examples/notebooks/*.ipynb) run top to bottom and show what their text claims.

Each notebook is executed in a fresh Jupyter kernel (nbclient), in its own
folder, exactly as a student's "Run all" would.  Its metadata says what the
run must show (``"minicnn": {"figures": N, "quotes": [...]}``): at least N
images (matplotlib figures), and every quoted number or phrase somewhere in
the outputs.  The cells themselves ``assert`` the numbers the prose states, so
a wrong claim fails the run.  Committed notebooks carry no outputs and no
execution counts: what a student opens is what the code makes.
"""
import json
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "examples" / "notebooks").glob("*.ipynb"))
PER_NOTEBOOK_SECONDS = 180  # the budget for one notebook on a 2-core CPU


def _ids():
    return [path.stem for path in NOTEBOOKS]


def _expectations(notebook):
    meta = notebook.metadata.get("minicnn", {})
    return meta.get("figures", 0), meta.get("quotes", [])


def _outputs(notebook):
    for cell in notebook.cells:
        yield from cell.get("outputs", [])


def _output_text(output):
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/plain", "") + data.get("text/markdown", "") + data.get("text/html", "")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks under examples/notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids())
def test_committed_notebook_holds_no_outputs(path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    for number, cell in enumerate(raw["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {number} holds outputs; strip them"
            assert cell.get("execution_count") is None, f"{path.name}: cell {number} has an execution count"
    assert "minicnn" in raw["metadata"], f"{path.name}: metadata.minicnn (figures, quotes) is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids())
def test_notebook_runs_and_shows_its_figures_and_numbers(path):
    nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the test extra (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="the notebook tests need the test extra (nbclient)")
    pytest.importorskip("ipykernel", reason="the notebook tests need a Jupyter kernel (ipykernel)")
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    # iopub_timeout: how long to wait for a cell's printed output after the kernel says it is done.  nbclient's
    # 4 s dropped a print on a loaded 2-core machine (the cell's own asserts had passed); a minute is plenty.
    client = nbclient.NotebookClient(notebook, timeout=PER_NOTEBOOK_SECONDS, kernel_name="python3",
                                     iopub_timeout=60, resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    seconds = time.perf_counter() - started
    figures, quotes = _expectations(notebook)
    images = sum("image/png" in output.get("data", {}) for output in _outputs(notebook))
    assert images >= figures, f"{path.name}: {images} figures shown, the notebook promises {figures}"
    text = "\n".join(_output_text(output) for output in _outputs(notebook))
    missing = [quote for quote in quotes if quote not in text]
    assert not missing, f"{path.name}: the outputs never show {missing}"
    print(f"{path.name}: {seconds:.1f} s, {images} figures")
