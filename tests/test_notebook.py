"""notebooks/tour.ipynb: committed without outputs, and every code cell runs.

No Jupyter kernel is needed: the notebook is read as JSON (stdlib) and its code cells are
executed in order in one namespace, as a kernel would, with matplotlib's Agg backend. The
environment variable MNIST_CNN_TOUR=quick makes the notebook's own budget small (its first code
cell: 1 epoch on 1,000 images, a few optimisation steps); the training cell still trains for
real. A failing cell fails the test with its number and first line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tour.ipynb"


def read_notebook(path=NOTEBOOK) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list:
    """[(cell number in the notebook, 1-based; source text)] of the code cells, in order."""
    return [(i, "".join(cell["source"])) for i, cell in enumerate(nb["cells"], 1)
            if cell["cell_type"] == "code"]


def run_cells(cells, namespace: dict) -> None:
    """Execute the cells in order in `namespace`; AssertionError naming the first that fails."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    for number, source in cells:
        first = source.strip().splitlines()[0] if source.strip() else "(empty)"
        try:
            exec(compile(source, f"<tour.ipynb cell {number}>", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"notebook cell {number} ({first!r}) failed: {type(e).__name__}: {e}")
        finally:
            plt.close("all")


def test_committed_without_outputs():
    nb = read_notebook()
    assert nb["nbformat"] == 4
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells
    for number, cell in enumerate(nb["cells"], 1):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                f"cell {number} has outputs: clear them before committing"


def test_every_part_of_the_series_has_its_section():
    text = "\n".join("".join(c["source"]) for c in read_notebook()["cells"]
                     if c["cell_type"] == "markdown")
    for part in ("parts I–III", "part II", "part IV", "part V", "part VI", "parts VII–XI",
                 "part XII", "Deep Dreams", "explorer"):
        assert part in text, part


def test_the_budget_switch_is_one_visible_cell():
    cells = [source for _, source in code_cells(read_notebook())]
    assert sum("MNIST_CNN_TOUR\")" in s for s in cells) == 1
    assert 'os.environ.get("MNIST_CNN_TOUR") == "quick"' in cells[0]


def test_cells_use_public_names_only():
    """The tour shows the API a user has: no private names, no command-line plumbing."""
    import re

    for number, source in code_cells(read_notebook()):
        assert not re.search(r"(import\s+|,\s*|\.)_[A-Za-z]", source), f"cell {number}: a private name"
        assert "argparse" not in source and "mnist_cnn.app" not in source and \
            "mnist_cnn.cli" not in source, f"cell {number}: the command line"
        assert not re.search(r"(from|import)\s+(mnist_cnn|analysis)\.", source), \
            f"cell {number}: a module below the public API of mnist_cnn and analysis (issue 24)"


def test_run_fails_naming_the_cell():
    with pytest.raises(pytest.fail.Exception, match=r"cell 3 \('x = 1 / 0'\) failed: ZeroDivision"):
        run_cells([(1, "a = 1"), (3, "x = 1 / 0\ny = 2")], {})


@pytest.mark.heavy
def test_every_cell_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_CNN_TOUR", "quick")
    monkeypatch.delenv("MNIST_CNN_TOUR_MODEL", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's scratch folders
    monkeypatch.chdir(NOTEBOOK.parent)           # where Jupyter starts a kernel
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    namespace = {"__name__": "__main__"}
    run_cells(code_cells(read_notebook()), namespace)
    # The tour really trained and looked: the numbers the text promises were computed.
    assert namespace["metrics"]["train_images"] == 1000
    assert namespace["cm"].sum() == len(namespace["y_test"])
    assert len(namespace["ranking"]) == namespace["net"].layer(namespace["LAST_CONV"]).channels
    assert namespace["oips"]["images"].shape == (16, 28, 28)
    assert namespace["field"].shape == (28, 28)
    assert os.getcwd() == str(NOTEBOOK.parents[1])


def make_notebook(tmp_path, venv_bin=()):
    """`make notebook` with VENV= a scratch folder (its stamp taken as up to date) and a PATH
    without Jupyter: (exit status, stdout)."""
    import subprocess

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in venv_bin:  # a stand-in Jupyter that prints what it was asked to open
        script = venv / "bin" / name
        script.write_text(f"#!/bin/sh\necho {name} \"$@\"\n")
        script.chmod(0o755)
    (venv / ".installed").touch()
    done = subprocess.run(["make", "-s", "--no-print-directory", "-o", f"{venv}/.installed",
                           "notebook", f"VENV={venv}"], cwd=NOTEBOOK.parents[1],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": "/usr/bin:/bin"})
    return done.returncode, done.stdout, venv


def test_make_notebook_without_jupyter_says_how_to_install_it(tmp_path):
    import shutil

    if shutil.which("jupyter-lab", path="/usr/bin:/bin") or \
            shutil.which("jupyter-notebook", path="/usr/bin:/bin"):
        pytest.skip("a system Jupyter is installed")
    rc, out, venv = make_notebook(tmp_path)
    assert rc == 0
    assert out.strip().splitlines() == [
        f"make notebook: Jupyter is not installed; install it with `{venv}/bin/pip install "
        "jupyterlab`, then run `make notebook` again"]


def test_make_notebook_opens_the_tour_in_the_venvs_jupyter(tmp_path):
    rc, out, venv = make_notebook(tmp_path, ["jupyter-lab", "jupyter-notebook"])
    assert rc == 0
    assert out.strip().splitlines()[-1] == "jupyter-lab notebooks/tour.ipynb"
    rc, out, venv = make_notebook(tmp_path / "b", ["jupyter-notebook"])
    assert out.strip().splitlines()[-1] == "jupyter-notebook notebooks/tour.ipynb"
