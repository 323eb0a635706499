"""Fashion-MNIST through the whole pipeline: --dataset / DATASET=, its own output folders, the
model's data set recorded and checked, class names (never "digit") in reports and figures."""

import json
import re
import shutil
import subprocess
from argparse import Namespace
from pathlib import Path

import pytest

from mnist_cnn import config, series
from mnist_cnn.data.registry import FASHION

ROOT = Path(__file__).parents[1]


def test_paths_per_dataset_and_the_makefile_agrees():
    assert config.TrainConfig().out_dir == "models"
    assert config.TrainConfig().model_path == config.DEFAULT_MODEL == "models/mnist_cnn.keras"
    fashion = config.TrainConfig(dataset="fashion-mnist")
    assert fashion.dataset == "fashion" and fashion.model_path == "models/fashion/mnist_cnn.keras"
    assert config.TrainConfig(dataset="fashion", out_dir="x").model_path == "x/mnist_cnn.keras"
    assert config.report_dir("mnist", "oip") == "reports/oip"
    assert config.report_dir("fashion", "oip") == "reports/fashion/oip"
    assert config.report_dir("fashion", "explorer") == "reports/fashion/explorer"
    from mnist_cnn.config import analyze_out_dir

    assert analyze_out_dir("mnist", 4) == "reports/digit-4"
    assert analyze_out_dir("fashion", 6) == "reports/fashion/class-6-shirt"
    assert analyze_out_dir("fashion", 0) == "reports/fashion/class-0-t-shirt-top"
    makefile = (ROOT / "Makefile").read_text()
    named = re.search(r"^FASHION_MODEL\s*:=\s*(\S+)", makefile, re.M).group(1)
    assert named == config.default_model("fashion")


BAD_CLASS_OR_DATASET = [
    (["analyze", "--dataset", "fashion", "--class", "shirtx"],
     "--class: Fashion-MNIST has no class 'shirtx': use 0-9 or a name (case-insensitive): "
     "T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot"),
    (["analyze", "--dataset", "fashion", "--digit", "6", "--contrast", "hat"],
     "--contrast: Fashion-MNIST has no class 'hat'"),
    (["analyze", "--class", "shirt"], "--class: must be a digit 0-9, got 'shirt'"),
    (["analyze", "--dataset", "fashion", "--digit", "5", "--class", "shirt"],
     "--digit 5 and --class shirt disagree"),
    (["analyze", "--dataset", "fashion", "--class", "shirt", "--contrast", "6"],
     "--contrast must differ from --digit (6); pick another class"),
    (["analyze", "--dataset", "fashion"], "required: --digit (or its alias --class)"),
    (["analyze", "--dataset", "shoes", "--digit", "1"], "unknown dataset 'shoes'; choose from mnist, fashion"),
    (["train", "--dataset", "shoes"], "unknown dataset 'shoes'"),
    (["evaluate", "--dataset", "fashion"], "no model at models/fashion/mnist_cnn.keras; run "
     "`make train DATASET=fashion`"),
]
CLASS_NAMES_ACCEPTED = [
    ["--class", "shirt"], ["--class", "Ankle Boot", "--contrast", "sneakers"],
    ["--digit", "6", "--class", "Shirt"], ["--class", "6"],
]


@pytest.fixture(scope="module")
def class_option_results(cli_batch, tmp_path_factory):
    """Every case above in one fresh Python, run in an empty folder (no models/ there)."""
    folder = tmp_path_factory.mktemp("class_options")
    bad = [[*args, *(["--out", str(folder / "r")] if args[0] == "analyze" else [])]
           for args, _ in BAD_CLASS_OR_DATASET]
    good = [["analyze", "--dataset", "fashion", *args, "--check-only"] for args in CLASS_NAMES_ACCEPTED]
    results = cli_batch(bad + good, cwd=folder)
    return results[:len(bad)], results[len(bad):], folder


@pytest.mark.parametrize("case", range(len(BAD_CLASS_OR_DATASET)),
                         ids=[" ".join(args) for args, _ in BAD_CLASS_OR_DATASET])
def test_bad_class_or_dataset_fails_before_tensorflow(case, class_option_results):
    bad, _, folder = class_option_results
    result, expected = bad[case], BAD_CLASS_OR_DATASET[case][1]
    assert result["rc"] == 2
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result["stderr"]
    assert not result["tensorflow"]
    assert not (folder / "r").exists()


@pytest.mark.parametrize("case", range(len(CLASS_NAMES_ACCEPTED)),
                         ids=[" ".join(args) for args in CLASS_NAMES_ACCEPTED])
def test_class_names_are_accepted(case, class_option_results):
    result = class_option_results[1][case]
    assert result["rc"] == 0, result["stderr"]
    assert not result["tensorflow"]


def test_make_takes_dataset_and_class(tmp_path):
    """CLASS= is DIGIT='s alias through make, DATASET= picks the default model (and the default
    training that builds it); a bad name fails at the check, before any training."""
    for name in ("Makefile", "requirements.txt"):  # a checkout without models/ (this one may have)
        shutil.copy(ROOT / name, tmp_path)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv/.installed").touch()  # newer than requirements.txt: nothing to install
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "analyze",
                          "DATASET=fashion", "CLASS=shirt"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    commands = " ".join(dry.stdout.split())
    assert '--dataset fashion --class "shirt"' in commands
    assert '--model "models/fashion/mnist_cnn.keras" --check-only' in commands
    assert "mnist_cnn train --dataset fashion" in commands
    bad = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "analyze",
                          "DATASET=fashion", "CLASS=shirtx"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert bad.returncode != 0
    assert "--class: Fashion-MNIST has no class 'shirtx'" in bad.stderr
    assert "train" not in bad.stdout
    # A good class gets past the class check: the next check is the (missing) model.
    good = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "analyze",
                           "DATASET=fashion", "CLASS=shirt", "MODEL=/nonexistent/m.keras"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert good.returncode != 0
    assert "no model at /nonexistent/m.keras" in good.stderr and "class" not in good.stderr


def test_fashion_training_records_its_dataset(tiny_fashion_run, tmp_path):
    import keras

    from mnist_cnn.model import load_trained, model_dataset

    cfg, metrics = tiny_fashion_run
    assert metrics["dataset"] == "fashion" and metrics["class_names"] == list(FASHION.class_names)
    assert metrics["config"]["dataset"] == "fashion"
    assert metrics["augmentation"] == list(config.AUGMENTATION["fashion"])
    # the data set's recipe (config.RECIPES): smoothed labels, so one-hot targets, and it trained
    assert metrics["config"]["label_smoothing"] == config.RECIPES["fashion"]["label_smoothing"] > 0
    assert metrics["config"]["l2"] == config.RECIPES["fashion"]["l2"]
    history = json.loads((Path(cfg.out_dir) / "history.json").read_text())
    assert history["accuracy"][-1] > 0.25  # mean over its 1 epoch on 2000 images; chance 0.1
    saved = keras.saving.load_model(cfg.model_path, compile=False)
    assert saved.name == series.MODEL_NAMES["fashion"] == "mnist_cnn_fashion"
    assert model_dataset(load_trained(cfg.model_path)) == "fashion"
    assert list(config.AUGMENTATION["fashion"]) == []  # measured best: none (README)
    assert config.AUGMENTATION["mnist"] == ("translate", "rotate")


def test_a_model_of_the_other_dataset_is_refused(untrained_mnist_model_path,
                                                 tiny_fashion_model_path, tmp_path, run_main):
    rc, err = run_main(["evaluate", "--dataset", "fashion", "--model", untrained_mnist_model_path])
    assert rc == 2 and len(err) == 1, err
    assert "was trained on MNIST, not Fashion-MNIST; pass --dataset mnist" in err[0]
    rc, err = run_main(["evaluate", "--model", tiny_fashion_model_path])
    assert rc == 2 and len(err) == 1, err
    assert "was trained on Fashion-MNIST, not MNIST; pass --dataset fashion" in err[0]
    # A copy without its metrics.json still knows: the data set is inside the .keras file.
    copy = tmp_path / "copied.keras"
    shutil.copy(tiny_fashion_model_path, copy)
    out = tmp_path / "r"
    for command in (["analyze", "--digit", "4", "--out", str(out)], ["oip", "--layer", "conv_1",
                                                                     "--out", str(out)]):
        rc, err = run_main([*command, "--model", str(copy)])
        assert rc == 2 and len(err) == 1 and "trained on Fashion-MNIST" in err[0], err
    assert not out.exists()


def test_evaluate_names_the_classes(tiny_fashion_model_path, capsys):
    from mnist_cnn.cli import main

    assert main(["evaluate", "--dataset", "fashion", "--model", tiny_fashion_model_path]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "9 Ankle boot" in out
    assert "digit" not in out.lower()


def _figure_texts(fig) -> list:
    texts = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        texts += [t.get_text() for t in ax.texts]
    return texts


def _report(model_path, dataset, digit, out, monkeypatch, sections):
    """run_analyze on the given sections; returns (summary, html, the texts of every figure)."""
    from analysis.report import context
    from analysis.report import sections as page

    texts = []
    save = context.save_figure

    def recording(fig, path):
        texts.extend(_figure_texts(fig))
        return save(fig, path)

    monkeypatch.setattr(context, "save_figure", recording)
    monkeypatch.setattr(page, "SECTIONS", [getattr(page, s) for s in sections])
    args = Namespace(dataset=dataset, digit=digit, contrast=None, samples=1, cmap="viridis",
                     layers=["conv_1"], out=str(out), model=str(model_path), data="")
    from mnist_cnn.app import analyze

    assert analyze.run(args) == 0
    return (json.loads((out / "summary.json").read_text()), (out / "index.html").read_text(),
            texts)


def test_names_in_reports(tiny_fashion_model_path, tmp_path, monkeypatch, capsys,
                          first_test_images):
    """A fashion report says "Shirt" (and "class") where MNIST's shows and says digits (MNIST's
    wording: tests/test_report.py::test_mnist_report_speaks_of_digits)."""
    summary, html, texts = _report(
        tiny_fashion_model_path, "fashion", 6, tmp_path / "fashion", monkeypatch,
        ["confusion_section", "samples_section", "comparison_section"])
    assert summary["dataset"] == "fashion" and summary["class_name"] == "Shirt"
    assert summary["contrast_name"] == FASHION.class_name(summary["contrast"])
    assert "digit" not in html.lower()
    assert "How the CNN sees a Shirt" in html and summary["contrast_name"] in html
    assert "--dataset fashion --class 6" in html
    assert texts and not [t for t in texts if "digit" in t.lower()]
    assert set(FASHION.class_names) <= set(texts)  # confusion matrix axes
    assert any("Shirt" in t for t in texts if t not in FASHION.class_names)  # titles too
    printed = capsys.readouterr().out
    assert "class 6 (Shirt) vs" in printed


def test_class_images_and_misclassified_figures_take_names():
    import numpy as np

    from analysis.oip.plots import plot_class_images
    from analysis.plots import plot_misclassified

    fig = plot_class_images(np.zeros((2, 28, 28)), [6, 0], [1.0, 2.0], [0.5, 0.6],
                            names=["Shirt", "T-shirt/top"])
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == ["class Shirt",
                                                                  "class T-shirt/top"]
    fig = plot_misclassified(np.zeros((1, 28, 28)), np.array([0]), np.array([0.9]), "Shirt",
                             class_names=FASHION.class_names, noun="class")
    texts = _figure_texts(fig)
    assert any("-> T-shirt/top" in t for t in texts)
    assert not [t for t in texts if "digit" in t]
