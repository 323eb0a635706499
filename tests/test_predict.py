"""`mnist_cnn predict`: bad input is one line, exit status 2, nothing written, no TensorFlow;
a good image gets its answer printed and its report written."""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw


def _png_with_size(path, width, height):
    """A valid PNG whose header claims width x height (the IDAT holds one row only): Pillow
    refuses it at open, before decoding, if that exceeds its decompression-bomb limit."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b""))


def _digit(path, size=(120, 90), fmt=None):
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).line([(30, 15), (30, 60), (80, 60), (80, 10), (80, 85)], fill=0, width=9)
    image.save(path, format=fmt)
    return path


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "folder.png").mkdir()
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("this is not an image\n")
    good = _digit(d / "good.png")
    (d / "truncated.png").write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    _png_with_size(d / "bomb.png", 20000, 20000)  # 400 M pixels > 2 x Image.MAX_IMAGE_PIXELS
    _png_with_size(d / "large.png", 10000, 10000)  # 100 M: over the limit, under twice it
    frames = [Image.new("L", (40, 40), 255) for _ in range(3)]
    for i, f in enumerate(frames):
        ImageDraw.Draw(f).line([(10 + i, 5), (20, 35)], fill=0, width=4)
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (64, 64), (250, 250, 245)).save(d / "blank.png")
    return d


BAD = {  # file: words the one line must contain
    "missing.png": "no such image",
    "folder.png": "is a folder",
    "empty.png": "empty",
    "text.png": "not an image",
    "truncated.png": "truncated",
    "bomb.png": "decompression-bomb",
    "large.png": "decompression-bomb",
    "animated.gif": "only its first frame would be used, so it is refused",
    "blank.png": "blank",
}


def test_every_bad_input_is_one_line_and_exit_status_2(bad_images, cli_batch, tmp_path):
    out = tmp_path / "reports"
    model = str(tmp_path / "model.keras")  # never reached: the images are checked first
    cases = [["predict", str(bad_images / name), "--model", model,
              "--out", str(out)] for name in BAD]
    # one bad image among good ones stops them all, before anything is written
    cases.append(["predict", str(bad_images / "good.png"), str(bad_images / "blank.png"),
                  "--model", model, "--out", str(out)])
    results = cli_batch(cases)
    for (name, words), r in zip([*BAD.items(), ("good+blank", "blank")], results):
        lines = r["stderr"].strip().splitlines()
        assert r["rc"] == 2, (name, r)
        assert len(lines) == 1 and words in lines[0], (name, lines)
        assert lines[0].startswith("mnist_cnn predict: error: "), lines
        assert not r["tensorflow"], name  # refused before TensorFlow is imported
    assert not out.exists()


def test_same_names_and_a_missing_model_are_refused(bad_images, cli_batch, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    _digit(other / "good.png")
    results = cli_batch([
        ["predict", str(bad_images / "good.png"), str(other / "good.png"), "--model", "x.keras"],
        ["predict", str(bad_images / "good.png"), "--model", str(tmp_path / "none.keras")],
        ["predict", str(bad_images / "good.png"), "--contrast", "12", "--model", "x.keras"]])
    assert [r["rc"] for r in results] == [2, 2, 2]
    assert "would both write" in results[0]["stderr"]
    assert "no model at" in results[1]["stderr"]
    assert "--contrast" in results[2]["stderr"]


def test_predict_prints_the_answer_and_writes_the_report(tiny_model_path, capsys, tmp_path,
                                                         monkeypatch):
    from mnist_cnn import data
    from mnist_cnn.cli import main

    load = data.load_dataset

    def small(*args, **kwargs):  # nearest neighbours among 2,000 training images: fast
        (x, y), test = load(*args, **kwargs)
        return (x[:2000], y[:2000]), test

    monkeypatch.setattr(data, "load_dataset", small)
    (x_train, y_train), _ = small()
    four = x_train[np.flatnonzero(y_train == 4)[0]]
    dark = tmp_path / "four.png"
    Image.fromarray(255 - four).resize((140, 140)).convert("RGB").save(dark)
    out = tmp_path / "reports"
    rc = main(["predict", str(dark), "--model", str(tiny_model_path), "--out", str(out),
               "--oip-steps", "0"])
    captured = capsys.readouterr()
    stdout = captured.out
    assert rc == 0, captured.err
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and "dark ink on light paper" in lines[0], lines
    assert f"{dark}: 4 " in lines[0] and f"{out / 'four' / 'index.html'}" in lines[0]
    for name in ("four",):
        page = (out / name / "index.html").read_text()
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["answer"][0]["class"] == 4 and len(summary["answer"]) == 3
        rows = summary["attribution"]["class"]["rows"]
        assert {r["method"] for r in rows} >= {"saliency", "integrated_gradients", "occlusion",
                                               "gradcam:conv_1", "gradcam:conv_3"}
        assert summary["attribution"]["class"]["completeness"]["max_relative_error"] <= 0.01
        for words in ("Feature maps of every layer", "Nearest training images", "beats random",
                      "rather than", "conv_3"):
            assert words in page, words
        for img in Path(out / name / "img").iterdir():
            Image.open(img).verify()
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".cache"]


def test_with_an_explorer_site_of_the_model_the_top_maps_link_to_its_unit_pages(
        explorer_site, tiny_model_path, tmp_path, monkeypatch, capsys):
    import re

    from mnist_cnn import data
    from mnist_cnn.cli import main

    load = data.load_dataset

    def small(*args, **kwargs):
        (x, y), test = load(*args, **kwargs)
        return (x[:1000], y[:1000]), test

    monkeypatch.setattr(data, "load_dataset", small)
    monkeypatch.chdir(tmp_path)  # the site is looked for at reports/explorer
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "explorer").symlink_to(explorer_site, target_is_directory=True)
    _digit(tmp_path / "mine.png")
    assert main(["predict", "mine.png", "--model", str(tiny_model_path)]) == 0, capsys.readouterr().err
    page_dir = tmp_path / "reports" / "predict" / "mine"
    links = re.findall(r'href="([^"]+\.html)"', (page_dir / "index.html").read_text())
    assert len(links) == 8 and all(re.search(r"/conv_3-\d+\.html$", link) for link in links)
    assert all((page_dir / link).resolve().is_file() for link in links)
    oips = sorted((page_dir / "img").glob("oip-conv_3-*.png"))
    assert len(oips) == 8  # taken from the site: nothing computed, nothing cached
    assert not list((tmp_path / "reports" / "predict" / ".cache").glob("oips-*"))


def test_oips_without_a_site_are_computed_for_the_maps_shown_and_cached(tiny_model, tiny_model_path,
                                                                         tmp_path):
    """Only the maps asked for are optimised; each is kept per model and reused, and a map's OIP
    does not depend on which maps were computed with it (start images are seeded per map)."""
    import numpy as np

    from analysis.predict import _oips
    from mnist_cnn.fileio import sha256_file

    digest, cache = sha256_file(tiny_model_path), tmp_path / "cache"
    first = _oips(tiny_model, digest, "conv_3", [0, 3], None, 3, cache)
    assert sorted(first) == [0, 3] and first[0].shape == (28, 28)
    (path,) = cache.glob("oips-conv_3-3-*.npz")
    with np.load(path) as f:
        assert sorted(f.files) == ["map_0", "map_3"]
    second = _oips(tiny_model, digest, "conv_3", [3, 5], None, 3, cache)
    np.testing.assert_array_equal(second[3], first[3])  # from the cache
    with np.load(path) as f:
        assert sorted(f.files) == ["map_0", "map_3", "map_5"]
    alone = _oips(tiny_model, digest, "conv_3", [5], None, 3, tmp_path / "other")
    np.testing.assert_allclose(alone[5], second[5], atol=1e-5)
