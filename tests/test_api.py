"""The Python API (docs/api.md): its runnable example runs as written, `import mnist_cnn` stays
cheap, and `mnist_cnn.train` is the function whatever was imported before."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def example() -> str:
    """The first python block after the "Runnable example" heading of docs/api.md."""
    text = DOC.read_text()
    section = text[text.index("## Runnable example"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.heavy
def test_the_documented_example_runs(tmp_path, monkeypatch, capsys):
    """The block as written; its report's attribution and concepts sections on the sizes of
    tests/test_report.py's report (their numbers are tested in tests/test_attribution.py and
    tests/test_concepts.py)."""
    from analysis.report import attribution, concepts

    for name, value in (("IMAGES", 16), ("RANDOMISE", 2), ("MISTAKES", 4)):
        monkeypatch.setattr(attribution, name, value)
    monkeypatch.setattr(concepts, "REPORT_PERMUTATIONS", 999)
    monkeypatch.chdir(tmp_path)  # it writes models/quick and reports/ where it runs
    exec(compile(example(), str(DOC), "exec"), {"__name__": "__example__"})
    printed = capsys.readouterr().out
    assert "conv_b maps that best separate 4 from 9" in printed
    assert (tmp_path / "models/quick/mnist_cnn.keras").is_file()
    assert (tmp_path / "reports/quick-4/index.html").is_file()
    assert (tmp_path / "reports/quick-explorer/conv_b-15.html").is_file()
    assert (tmp_path / "reports/quick-explorer/digits-9.html").is_file()


def test_import_is_cheap_and_train_is_the_function():
    """No submodule may be named like an API function: importing it would rebind the name."""
    code = ("import sys, mnist_cnn as mc, analysis; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "import mnist_cnn.app.train, mnist_cnn.api; from mnist_cnn import train; "
            "assert train is mnist_cnn.api.train and mc.train is train, train; "
            "assert callable(mc.load_model) and callable(mc.load_dataset) and mc.TrainConfig; "
            "assert 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=DOC.parents[1])
    assert done.returncode == 0, done.stderr
    import mnist_cnn
    import analysis

    package = Path(mnist_cnn.__file__).parent
    for name in mnist_cnn._API:
        assert not (package / f"{name}.py").exists() and not (package / name).is_dir(), name
    for name in analysis._API:
        assert not (Path(analysis.__file__).parent / f"{name}.py").exists(), name
