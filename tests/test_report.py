"""The analyze report: files match summary.json, the page is self-contained, bad input fails
cleanly (one line, exit status 2, no traceback, `reports/` untouched)."""

import json
import re
import subprocess
from argparse import Namespace

import numpy as np
import pytest



@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_model, tiny_model_path, mnist):
    """A full report on the first 2000 test images (all sections, two layers drawn; the
    attribution section on fewer images than a user's report, the concepts section on fewer
    label shuffles: their numbers are tested in tests/test_attribution.py and
    tests/test_concepts.py)."""
    from analysis.report import attribution as section
    from analysis.report import build_report
    from analysis.report import concepts

    _, (x_test, y_test) = mnist
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("IMAGES", 16), ("RANDOMISE", 2), ("MISTAKES", 4)):
            patch.setattr(section, name, value)
        patch.setattr(concepts, "REPORT_PERMUTATIONS", 999)  # p >= 1/1000: Holm still can pass
        summary = build_report(tiny_model, tiny_model_path, (x_test[:2000], y_test[:2000]), 4,
                               out, samples=2, layers=("conv_1", "conv_3"))
    return out, summary


def test_folder_holds_exactly_what_summary_lists(report):
    out, summary = report
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(summary["files"])
    assert json.loads((out / "summary.json").read_text())["files"] == summary["files"]
    for png in (f for f in summary["files"] if f.endswith(".png")):
        assert png[:-4] + ".npz" in summary["files"], f"{png} has no numbers beside it"
    for name in ("activations_conv_1.png", "activations_conv_3.png", "samples_conv_3.png",
                 "kernels_conv_1.png", "class_means_conv_3.png", "confusion_matrix.png",
                 "misclassified_4.png", "ablation_conv_3.png", "ranking_conv_3.csv"):
        assert name in summary["files"]
    assert "activations_pool_1.png" not in summary["files"]  # only the chosen layers are drawn


def test_summary_has_the_key_numbers(report, tiny_model_path):
    from analysis.compare import most_confused_with
    from mnist_cnn.fileio import sha256_file

    out, s = report
    assert s["model"]["sha256"] == sha256_file(tiny_model_path)
    assert 0.8 < s["test_accuracy"] <= 1 and s["digit"] == 4
    cm = np.load(out / "confusion_matrix.npz")["confusion_matrix"]
    assert s["contrast"] == most_confused_with(cm, 4) and s["contrast_source"] == "most confused"
    assert len(s["top_maps"]) == 16 and s["top_maps"][0]["rank"] == 1
    assert 0.5 < s["probe"]["all_features"] <= 1
    assert [r["k"] for r in s["ablation"]["rows"]][:5] == [1, 2, 4, 8, 16]
    # The ranking in the CSV, the npz and summary.json agree.
    npz = np.load(out / "class_statistics.npz")
    assert int(npz["conv_3_ranking"][0]) == s["top_maps"][0]["map"]
    first_csv_row = (out / "ranking_conv_3.csv").read_text().splitlines()[1].split(",")
    assert int(first_csv_row[1]) == s["top_maps"][0]["map"]


def test_concepts_section_tests_the_two_classes_with_holm(report):
    out, s = report
    rows = s["sections"]["concepts"]["rows"]
    assert {r["class"] for r in rows} == {4, s["contrast"]}
    assert {r["layer"] for r in rows} == {"conv_3", "dense_1"}
    assert {r["concept"] for r in rows} >= {"loop", "thickness", "slant"}
    assert all(0 < r["p"] <= r["p_holm"] <= 1 for r in rows)
    assert "which concepts" in (out / "index.html").read_text()
    assert (out / "concepts.csv").read_text().startswith("concept,layer,score_4,")


def test_page_is_self_contained(report):
    out, summary = report
    page = (out / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"#]+)"', page) + re.findall(r"href='([^'#]+)'", page)
    assert links and all(not re.match(r"[a-z]+:", link) and (out / link).is_file() for link in links)
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len([f for f in summary["files"] if f.endswith(".png")])
    assert page.count("<figcaption>") == len(images)
    assert "<script" not in page and "http" not in page


def test_mnist_report_speaks_of_digits(report):
    out, summary = report
    page = (out / "index.html").read_text()
    assert summary["dataset"] == "mnist" and summary["class_name"] == "4"
    assert "digit / contrast" in page and "How the CNN sees a 4" in page
    assert "analyze --digit 4" in page and "Shirt" not in page


def test_given_contrast_is_used(tiny_model, tiny_model_path, mnist, tmp_path):
    from analysis.report import build_report
    from analysis.report.sections import confusion_section

    _, (x_test, y_test) = mnist
    s = build_report(tiny_model, tiny_model_path, (x_test[:500], y_test[:500]), 3, tmp_path,
                     contrast=8, sections=[confusion_section])
    assert s["contrast"] == 8 and s["contrast_source"] == "given"


BAD_ANALYZE = [
    (["analyze"], "the following arguments are required: --digit"),
    (["analyze", "--digit", "four"], "--digit: must be a digit 0-9, got 'four'"),
    (["analyze", "--digit", "12"], "--digit: must be a digit 0-9, got '12'"),
    (["analyze", "--digit", ""], "--digit: must be a digit 0-9"),
    (["analyze", "--digit", "4", "--contrast", "4"], "--contrast must differ from --digit"),
    (["analyze", "--digit", "4", "--contrast", "x"], "--contrast: must be a digit 0-9, got 'x'"),
    (["analyze", "--digit", "4", "--contrast", "10"], "--contrast: must be a digit 0-9"),
    (["analyze", "--digit", "4", "--layers", "conv_1,conv9"], "unknown layer 'conv9'"),
    (["analyze", "--digit", "4", "--cmap", "nocmap"], "unknown colormap 'nocmap'"),
    (["analyze", "--digit", "4", "--model", "/nonexistent/m.keras"], "no model at"),
]


@pytest.fixture(scope="module")
def bad_analyze_results(cli_batch, tmp_path_factory):
    reports = tmp_path_factory.mktemp("bad_analyze") / "reports"
    results = cli_batch([[*args, "--out", str(reports / f"case-{i}")]
                         for i, (args, _) in enumerate(BAD_ANALYZE)])
    return results, reports


@pytest.mark.parametrize("case", range(len(BAD_ANALYZE)),
                         ids=[" ".join(args) for args, _ in BAD_ANALYZE])
def test_bad_arguments_fail_before_tensorflow(case, bad_analyze_results):
    (results, reports), expected = bad_analyze_results, BAD_ANALYZE[case][1]
    result = results[case]
    assert result["rc"] == 2
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result["stderr"]
    assert not result["tensorflow"]
    assert not reports.exists()  # nothing written


def test_make_checks_digit_before_training(tmp_path):
    """A typo in DIGIT must fail at once, never start the default training."""
    result = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "analyze",
                             "DIGIT=44", "MODEL=models/mnist_cnn.keras"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "--digit: must be a digit 0-9, got '44'" in result.stderr
    assert "train" not in result.stdout


@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_bad_model_files(kind, tmp_path, run_main):
    import keras

    path = tmp_path / "model.keras"
    if kind == "corrupt":
        path.write_bytes(b"this is not a keras archive")
    else:
        inputs = keras.Input((28, 28, 1))  # 5 classes: refused for MNIST (mnist_cnn.network)
        keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs))).save(path)
    out = tmp_path / "reports" / "digit-4"
    rc, err = run_main(["analyze", "--digit", "4", "--model", str(path), "--out", str(out)])
    assert rc == 2 and len(err) == 1
    assert ("cannot load model" if kind == "corrupt" else "has 5 units, but the data set has 10") in err[0]
    assert not (tmp_path / "reports").exists()


def test_failed_run_leaves_the_old_report(tiny_model_path, tmp_path, monkeypatch, run_main,
                                          first_test_images):
    """A section failing half-way: the previous report stays whole, no temporary folder left."""
    from analysis.report import sections
    from mnist_cnn.errors import UserError

    out = tmp_path / "reports" / "digit-4"
    out.mkdir(parents=True)
    (out / "index.html").write_text("old report")

    def broken(ctx):
        raise UserError("disk full (simulated)")

    monkeypatch.setattr(sections, "SECTIONS", [sections.kernels_section, broken])
    rc, err = run_main(["analyze", "--digit", "4", "--contrast", "9", "--model",
                        str(tiny_model_path), "--out", str(out)])
    assert rc == 2 and err == ["mnist_cnn analyze: error: disk full (simulated)"]
    assert [p.name for p in out.parent.iterdir()] == ["digit-4"]
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text() == "old report"


def test_run_analyze_cli(tiny_model_path, tmp_path, monkeypatch, capsys, first_test_images):
    """The CLI entry end to end, with the report sections reduced to the cheap ones."""
    from analysis.report import sections

    monkeypatch.setattr(sections, "SECTIONS",
                        [sections.confusion_section, sections.kernels_section])
    out = tmp_path / "digit-7"
    from mnist_cnn.app import analyze

    args = Namespace(dataset="mnist", digit=7, contrast=None, samples=1, cmap="jet",
                     layers=["conv_1"], out=str(out), model=str(tiny_model_path), data="")
    assert analyze.run(args) == 0
    assert "wrote" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["digit"] == 7 and summary["contrast"] != 7
    assert sorted(summary["files"]) == sorted(p.name for p in out.iterdir())
