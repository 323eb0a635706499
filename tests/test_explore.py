"""The unit explorer (`make explore`): the site's files and links, its numbers against
independent computations (model cuts, the digit report's AUC, zeroing through the head model),
the OIP check, and bad input (one line, exit status 2, no TensorFlow, old site untouched);
`--dataset fashion`: class names instead of digits, its own default folder, the model checked.

The site is built once per session on the tiny model (`explorer_site` in conftest.py).
"""

import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

LIMIT = 1000  # test images the session's site was built on
FIELD = {"conv_1": (3, 1), "conv_2": (8, 2), "conv_3": (18, 4)}  # receptive field, stride


@pytest.fixture(scope="module")
def x_test(mnist):
    return (mnist[1][0][:LIMIT].astype(np.float32) / 255.0)[..., None], mnist[1][1][:LIMIT]


def unit(site, name):
    return json.loads((site / f"{name}.json").read_text())


def test_every_unit_has_a_page_and_numbers(explorer_site):
    from analysis.explore.compute import unit_names
    from mnist_cnn.model import build_model
    from mnist_cnn.network import describe

    names = unit_names(describe(build_model()))
    assert len(names) == 304 and names[0] == "conv_1-0" and names[-1] == "output-9"
    site = json.loads((explorer_site / "site.json").read_text())
    assert site["generator"] == "mnist_cnn explore" and site["test_images"] == LIMIT
    assert site["dataset"] == "mnist" and site["class_names"] == [str(k) for k in range(10)]
    assert sum(v["units"] for v in site["layers"].values()) == 304
    for name in names:
        assert (explorer_site / f"{name}.html").is_file() and (explorer_site / f"{name}.json").is_file()
    u = unit(explorer_site, "conv_3-5")
    assert u["previous"] == "conv_3-4" and u["next"] == "conv_3-6"
    assert len(u["top"]) == 9 and len(u["oip"]["activation"]) == 2 and len(u["auc"]) == 10
    assert np.asarray(u["oip"]["images"]).shape == (2, 28, 28)
    files = [p for p in explorer_site.rglob("*") if p.is_file()]
    assert site["files"] == len(files) and site["bytes"] <= sum(p.stat().st_size for p in files)
    assert sum(p.stat().st_size for p in files) < 50e6


def test_links_are_local_and_resolve(explorer_site):
    pages = sorted(explorer_site.glob("*.html"))
    assert len(pages) == 1 + 5 + 304 + 1  # index, layers, units, draw
    for page in pages:
        text = page.read_text()
        links = re.findall(r'(?:href|src)="([^"]*)"', text)
        assert links, page
        for link in links:
            assert not re.match(r"[a-z]+:|//", link), f"{page.name}: non-local link {link}"
            assert (explorer_site / link.split("#")[0]).is_file(), f"{page.name}: broken link {link}"
        assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http" not in (explorer_site / "site.js").read_text() + (explorer_site / "site.css").read_text()


@pytest.fixture(scope="module")
def cut_values(tiny_model, x_test):
    """Every unit's activation from a plain model cut, without the explorer's code:
    {layer: (maps or values (N, ...))}, the output layer as logits."""
    from mnist_cnn.model import sub_model

    layers = ["conv_1", "conv_2", "conv_3", "dense_1"]
    out = dict(zip(layers, (np.asarray(a) for a in sub_model(tiny_model, layers)([x_test[0]]))))
    kernel, bias = tiny_model.get_layer("output").get_weights()
    out["output"] = out["dense_1"] @ kernel + bias
    return out


def test_unit_and_layer_pages_name_the_concepts_most_tied_to_them(explorer_site, x_test,
                                                                  cut_values):
    from scipy.stats import spearmanr

    from analysis.concepts import measure

    u = unit(explorer_site, "conv_3-5")
    assert set(u["concepts"]) == {"area", "length", "thickness", "slant", "width", "height",
                                  "loops", "endpoints", "junctions"}
    # an independent Spearman: scipy's, on the peaks of a plain model cut
    peaks = cut_values["conv_3"][..., 5].max(axis=(1, 2))
    slant = measure(x_test[0])["slant"]
    assert u["concepts"]["slant"] == pytest.approx(spearmanr(peaks, slant)[0], abs=1e-3)
    page = (explorer_site / "conv_3-5.html").read_text()
    strongest = max(u["concepts"], key=lambda n: abs(u["concepts"][n]))
    assert '<section id="concepts">' in page and f"<th>{strongest}</th>" in page
    layer = (explorer_site / "conv_3.html").read_text()
    rows = re.findall(r"<tr><th>(\w+)</th>((?:<td><a href=\"conv_3-\d+\.html\">)[^\n]*?)</tr>",
                      layer)
    assert {name for name, _ in rows} == set(u["concepts"])
    loop_units = re.findall(r'href="(conv_3-\d+)\.html">[^<]*</a> ([+-][\d.]+)',
                            dict(rows)["loops"])
    rhos = [abs(unit(explorer_site, name)["concepts"]["loops"]) for name, _ in loop_units]
    others = [abs(unit(explorer_site, f"conv_3-{i}")["concepts"]["loops"]) for i in range(128)]
    assert len(rhos) == 3 and rhos == sorted(rhos, reverse=True) and rhos[0] == max(others)


@pytest.mark.parametrize("name", ["conv_1-3", "conv_2-10", "conv_3-48", "dense_1-5", "output-7"])
def test_top_images_match_a_model_cut(explorer_site, cut_values, name):
    layer, index = name.rsplit("-", 1)
    out = cut_values[layer][..., int(index)]
    values = out.reshape(len(out), -1).max(axis=1) if out.ndim == 3 else out
    top = np.argsort(-values, kind="stable")[:9]
    u = unit(explorer_site, name)
    site_top = [t["index"] for t in u["top"]]
    # the same images up to exact ties: the values at the site's indices are the 9 largest
    np.testing.assert_allclose(np.sort(values[site_top]), np.sort(values[top]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose([t["activation"] for t in u["top"]], values[site_top], rtol=1e-4,
                               atol=1e-5)
    assert sum(a == b for a, b in zip(site_top, top)) >= 7
    if layer in FIELD:
        field, stride = FIELD[layer]
        for t in u["top"]:
            row, col = divmod(int(np.argmax(out[t["index"]])), out.shape[2])
            assert t["box"] == [[row * stride, row * stride + field], [col * stride, col * stride + field]]


def test_statistics_against_the_digit_report_and_a_hand_case():
    from analysis.compare import effect_sizes
    from analysis.explore.compute import selectivity, unit_statistics

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 30)
    act = np.maximum(rng.normal(size=(300, 4)) + (y[:, None] == 3) * np.array([2.0, 0, 0, 0]), 0)
    act[:, 2] = 0  # a dead unit
    act[:, 3] = np.round(act[:, 3], 1)  # ties
    s = unit_statistics(act, y)
    for k in (3, 7):
        np.testing.assert_allclose(s["auc"][:, k], effect_sizes(act[y == k], act[y != k])["auc"])
    assert s["preferred"][0] == 3 and s["preferred"][2] == -1
    assert s["dead"].tolist() == [False, False, True, False]
    assert s["selectivity"][2] == 0 and s["selectivity"][0] > s["selectivity"][1]
    assert all(act[s["top"][0], 0] >= np.sort(act[:, 0])[-9])
    assert set(y[s["low"][0]]) == {3}
    pref, si = selectivity(np.array([[3.0, 1, 1, 1, 1, 1, 1, 1, 1, 1]]), 0.0)
    assert pref[0] == 0 and si[0] == pytest.approx(0.5)  # (3 - 1) / (3 + 1)
    _, si = selectivity(np.array([[2.0, -1, -1, -1, -1, -1, -1, -1, -1, -1]]), -1.0)
    assert si[0] == pytest.approx(1.0)  # only the preferred class rises above the floor


def test_circuit_links_are_the_strongest_weights():
    from analysis.explore.circuit import circuit
    from mnist_cnn.model import build_model
    from mnist_cnn.network import describe

    rng = np.random.default_rng(1)
    shapes = {"conv_1": (3, 3, 1, 32), "conv_2": (3, 3, 32, 64), "conv_3": (3, 3, 64, 128),
              "dense_1": (1152, 70), "output": (70, 10)}
    weights = {k: (rng.normal(size=s).astype(np.float32), np.zeros(s[-1], np.float32))
               for k, s in shapes.items()}
    mean = rng.uniform(0, 1, size=(70, 10))
    c = circuit(weights, describe(build_model()), {"dense_1": mean})
    norms = np.linalg.norm(weights["conv_3"][0][:, :, :, 48].reshape(9, 64), axis=0)
    assert list(c["conv_3"]["inputs"][48]) == list(np.argsort(-norms)[:5])
    np.testing.assert_allclose(c["conv_3"]["input_strength"][48], np.sort(norms)[::-1][:5], rtol=1e-6)
    to_dense = np.linalg.norm(weights["dense_1"][0].reshape(9, 128, 70)[:, 7, :], axis=0)
    assert list(c["conv_3"]["outputs"][7]) == list(np.argsort(-to_dense)[:5])
    drive = mean[:, 4] * weights["output"][0][:, 4]
    assert list(c["output"]["inputs"][4]) == list(np.argsort(-drive)[:5])
    assert list(c["dense_1"]["outputs"][3]) == list(np.argsort(-np.abs(weights["output"][0][3]))[:5])
    np.testing.assert_array_equal(c["kernels"][5], weights["conv_1"][0][:, :, 0, 5])
    assert "inputs" not in c["conv_1"] and "outputs" not in c["output"]


def test_causal_effect_equals_zeroing_and_running_the_head(tiny_model, x_test):
    from analysis.explore.causal import causal_effects
    from analysis.compare import zero_maps
    from mnist_cnn.model import head_model
    from mnist_cnn.model import sub_model

    x, y = x_test[0][:300], x_test[1][:300]
    effects = causal_effects(tiny_model, x, y, batch=128)
    base = np.asarray(tiny_model(x))
    true_p = base[np.arange(len(y)), y]
    for layer, index in (("conv_1", 4), ("conv_2", 17), ("conv_3", 48), ("dense_1", 9)):
        maps = np.asarray(sub_model(tiny_model, [layer])([x]))
        p = np.asarray(head_model(tiny_model, layer)(zero_maps(maps, [index])))
        for k in (int(y[0]), int(y[1])):
            mine = y == k
            expected = (p[mine].argmax(1) == k).mean() - (base[mine].argmax(1) == k).mean()
            assert effects[layer]["accuracy"][index, k] == pytest.approx(expected, abs=1e-9)
            expected = p[mine, k].mean() - true_p[mine].mean()
            assert effects[layer]["probability"][index, k] == pytest.approx(expected, abs=2e-5)
    assert effects["base_accuracy_all"] == pytest.approx((base.argmax(1) == y).mean())


def test_oip_of_every_live_conv_3_map_beats_its_test_maximum(tiny_model, x_test):
    """With the command's default steps and starts, as the site picks a unit's OIP (the best of
    its starts): start 0 for all maps, the other starts only where start 0 falls short. The
    scan's data maximum equals analysis.oip's own data_maximum."""
    from analysis.explore import compute
    from analysis.oip.ascent import Ascent, OIPConfig
    from analysis.oip.compute import data_maximum
    from mnist_cnn.cli import build_parser

    defaults = build_parser().parse_args(["explore"])
    config = OIPConfig(steps=defaults.steps, precision="float32")
    x, _ = x_test
    data_max = compute.objective_maximum(compute.scan(tiny_model, x), "conv_3")
    np.testing.assert_allclose(data_max, data_maximum(Ascent(tiny_model, "conv_3", config=config), x,
                                                      np.arange(128)), rtol=1e-5, atol=1e-6)
    live = np.flatnonzero(data_max > 0)
    assert len(live) >= 64
    first = compute.layer_oips(tiny_model, "conv_3", data_max, starts=1, config=config, retry=False)
    short = live[first["activation"][0, live] <= data_max[live]]
    assert len(short) <= len(live) // 10
    if len(short):
        rest = compute.layer_oips(tiny_model, "conv_3", data_max[short], defaults.starts, config,
                                  units=short)
        kept = ~rest["retried"]  # the first set of starts: start 0 is the single run's
        np.testing.assert_allclose(rest["activation"][0, kept], first["activation"][0, short][kept],
                                   rtol=1e-4)
        best = rest["activation"].max(axis=0)
        assert (best > data_max[short]).all(), f"maps not beaten: {short[best <= data_max[short]]}"


def test_units_left_short_get_a_second_set_of_starts(tiny_model, x_test):
    """A live unit whose best OIP stays at or below its test maximum gets new starts and keeps
    them only if they do better; every other unit's OIPs are those of a run without retries."""
    from analysis.explore import compute
    from analysis.oip.ascent import OIPConfig

    config = OIPConfig(steps=8, precision="float32")  # few steps: many units stay short
    x, _ = x_test
    data_max = compute.objective_maximum(compute.scan(tiny_model, x[:500]), "conv_3")
    plain = compute.layer_oips(tiny_model, "conv_3", data_max, 2, config, retry=False)
    tried = compute.layer_oips(tiny_model, "conv_3", data_max, 2, config)
    short = (data_max > 0) & (plain["activation"].max(axis=0) <= data_max)
    retried = tried["retried"]
    assert short.any() and retried.any() and not retried[~short].any()
    np.testing.assert_allclose(tried["activation"][:, ~retried], plain["activation"][:, ~retried],
                               rtol=1e-5, atol=1e-6)
    assert (tried["activation"][:, retried].max(axis=0) > plain["activation"][:, retried].max(axis=0)).all()
    assert not np.allclose(tried["images"][:, retried], plain["images"][:, retried])


def test_bad_input_is_one_line_and_status_2_without_tensorflow(tmp_path, tiny_model_path,
                                                              cli_batch):
    not_zip = tmp_path / "broken.keras"
    not_zip.write_bytes(b"not a zip")
    bad_npz = tmp_path / "mnist.npz"
    bad_npz.write_bytes(b"garbage")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    model = str(tiny_model_path)
    cases = [
        (["explore", "--model", str(tmp_path / "missing.keras")], "no model at"),
        (["explore", "--model", str(not_zip)], "is not a Keras model archive"),
        (["explore", "--model", model, "--data", str(tmp_path / "none.npz")], "does not exist"),
        (["explore", "--model", model, "--data", str(bad_npz)], str(bad_npz)),
        (["explore", "--model", model, "--out", str(a_file)], "exists and is not a folder"),
        (["explore", "--model", model, "--out", str(foreign)], "other contents"),
        (["explore", "--model", model, "--out", str(a_file / "site")], "is not a folder"),
        (["explore", "--model", model, "--starts", "11"], "at most 10"),
    ]
    results = cli_batch([argv for argv, _ in cases])
    assert [r["rc"] for r in results] == [2] * len(cases)
    assert not any(r["tensorflow"] for r in results)
    for r, (_, expected) in zip(results, cases):
        lines = r["stderr"].strip().splitlines()
        assert len(lines) == 1, r["stderr"]
        assert lines[0].startswith("mnist_cnn explore: error:") and expected in lines[0], lines[0]
    assert (foreign / "notes.txt").read_text() == "mine" and a_file.read_text() == "x"


def test_failed_build_leaves_the_old_site(tmp_path, tiny_model_path, monkeypatch):
    from analysis.explore import build
    from mnist_cnn.cli import main

    out = tmp_path / "site"
    out.mkdir()
    (out / "site.json").write_text(json.dumps({"generator": "mnist_cnn explore"}))
    (out / "index.html").write_text("old")

    def broken(model, model_path, test_data, folder, **kwargs):
        (folder / "index.html").write_text("half")
        raise RuntimeError("killed midway")

    monkeypatch.setattr(build, "build_site", broken)
    with pytest.raises(RuntimeError):
        main(["explore", "--model", str(tiny_model_path), "--out", str(out), "--limit", "100"])
    assert (out / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temporary folder left


# --dataset fashion ----------------------------------------------------------------------------

def test_fashion_site_names_its_classes(tmp_path, tiny_fashion_model_path):
    """A Fashion-MNIST site (tiny model, 300 test images, one 5-step OIP per unit) says class
    where MNIST says digit and names the classes: preferred class, image labels, tables."""
    from mnist_cnn.cli import main
    from mnist_cnn.data.registry import FASHION

    out = tmp_path / "site"
    assert main(["explore", "--dataset", "fashion", "--model", str(tiny_fashion_model_path),
                 "--out", str(out), "--limit", "300", "--steps", "5", "--starts", "1",
                 "--precision", "float32"]) == 0
    site = json.loads((out / "site.json").read_text())
    assert site["dataset"] == "fashion" and site["class_names"] == list(FASHION.class_names)
    pages = {p.name: p.read_text() for p in out.glob("*.html")}
    assert len(pages) == 1 + 5 + 304 + 1  # index, layers, units, draw
    for name, text in pages.items():
        assert "digit" not in text.lower(), name
    assert "Fashion-MNIST" in pages["index.html"] and "6 Shirt" in pages["index.html"]
    assert "<td>6 (Shirt)</td>" in pages["output-6.html"]  # the per-class tables
    assert "its class (activation" in pages["output-6.html"]
    u = unit(out, "dense_1-0")
    pref = FASHION.class_label(u["preferred"])
    assert f"preferred class <b>{html.escape(pref)}</b>" in pages["dense_1-0.html"]
    assert f"preferred class {html.escape(pref)} that excite it least" in pages["dense_1-0.html"]
    label = FASHION.class_name(u["top"][0]["label"])
    assert f'#{u["top"][0]["index"]} <b>{html.escape(label)}</b>' in pages["dense_1-0.html"]


def test_fashion_needs_every_class():
    from analysis.explore.build import build_site
    from mnist_cnn.errors import UserError

    images, labels = np.zeros((20, 28, 28), np.uint8), np.arange(20) % 9  # no Ankle boot
    with pytest.raises(UserError, match="every class 0-9; check --data/--limit"):
        build_site(None, "unused.keras", (images, labels), "unused", dataset="fashion")


def test_an_mnist_model_is_refused_for_fashion(tmp_path, untrained_mnist_model_path, capsys):
    from mnist_cnn.cli import main

    out = tmp_path / "site"
    rc = main(["explore", "--dataset", "fashion", "--model", str(untrained_mnist_model_path), "--out",
               str(out), "--limit", "100"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("mnist_cnn explore: error: model ")
    assert "was trained on MNIST, not Fashion-MNIST" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_default_folders_per_dataset(tmp_path, monkeypatch):
    """Without --out: reports/explorer for MNIST, reports/fashion/explorer for Fashion-MNIST
    (`config.report_dir`), each with its data set's default model; `make explore DATASET=fashion`
    passes the data set and builds the fashion model when it is missing."""
    from mnist_cnn.cli import build_parser

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # the checks look at the (missing) default folders here
    for argv, out, model in (([], "reports/explorer", "models/mnist_cnn.keras"),
                             (["--dataset", "fashion"], "reports/fashion/explorer",
                              "models/fashion/mnist_cnn.keras")):
        args = build_parser().parse_args(["explore", *argv, "--check-only"])
        assert args.out is None
        args.check(args)
        assert (args.out, args.model) == (out, model)
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "explore",
                          "DATASET=fashion"], capture_output=True, text=True, timeout=60, cwd=root)
    assert dry.returncode == 0, dry.stderr
    commands = " ".join(dry.stdout.split())
    assert 'explore --dataset fashion --model "models/fashion/mnist_cnn.keras" --check-only' in commands
    assert "--no-print-directory models/fashion/mnist_cnn.keras" in commands  # built if missing
