"""Fashion-MNIST loading: idx parsing, the Debian path (with small fake .deb files), explicit
files, the known facts on the real data, and class names (`mnist_cnn.data.registry`)."""

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn import data
from mnist_cnn.data import fashion as fashion_data
from mnist_cnn.data.verify import content_digest
from mnist_cnn.data.registry import (DATASET_NAMES, FASHION, MNIST, UnknownClassError, class_index,
                                get_dataset)
from mnist_cnn.errors import UserError

REAL_APT_GET_DOWNLOAD = fashion_data._apt_get_download
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


# ----- helpers ------------------------------------------------------------------------------

def idx_bytes(array, magic=None):
    """An uncompressed idx file of uint8 `array` (magic 0x0801 labels, 0x0803 images)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def tiny_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
            "y_train": np.array([9, 0, 0, 3, 1, 2], dtype=np.uint8),
            "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
            "y_test": np.array([9, 2, 1, 1], dtype=np.uint8)}


def expected_for(arrays):
    return {k: (a.shape, content_digest(a)) for k, a in arrays.items()}


def build_deb(folder, arrays, name="fake"):
    """A .deb laid out like Debian's dataset-fashion-mnist, holding `arrays` as idx .gz files."""
    root = folder / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {fashion_data.FASHION_DEBIAN_PACKAGE}\nVersion: {fashion_data.FASHION_DEBIAN_VERSION}\n"
        "Architecture: all\nMaintainer: tests <tests@example.org>\nDescription: fake\n")
    target = root / fashion_data.FASHION_DEBIAN_DIR
    target.mkdir(parents=True)
    for key, fname in fashion_data.FASHION_FILES.items():
        (target / fname).write_bytes(gzip.compress(idx_bytes(arrays[key])))
    deb = folder / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb


def fake_download(deb):
    """A stand-in for `apt-get download` that copies `deb` where apt would put it."""
    def download(spec, workdir):
        assert spec == f"{fashion_data.FASHION_DEBIAN_PACKAGE}={fashion_data.FASHION_DEBIAN_VERSION}"
        out = workdir / f"{fashion_data.FASHION_DEBIAN_PACKAGE}_{fashion_data.FASHION_DEBIAN_VERSION}_all.deb"
        shutil.copyfile(deb, out)
        return out
    return download


def offline(*args, **kwargs):
    raise OSError("no network in tests")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty Keras home, no FASHION_NPZ, no Keras download, no real apt-get."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("FASHION_NPZ", raising=False)
    monkeypatch.setattr(fashion_data, "_keras_fashion_download", offline)
    monkeypatch.setattr(fashion_data, "_apt_get_download", lambda spec, workdir: pytest.fail("apt-get"))
    return tmp_path


def serve_fake_debian(sandbox, monkeypatch):
    """A fake package of tiny arrays that the loader trusts (digests patched) and "downloads";
    returns (arrays, path of the .deb)."""
    arrays = tiny_arrays()
    deb = build_deb(sandbox, arrays)
    monkeypatch.setattr(fashion_data, "FASHION_EXPECTED", expected_for(arrays))
    monkeypatch.setattr(fashion_data, "FASHION_DEB_SHA256", hashlib.sha256(deb.read_bytes()).hexdigest())
    monkeypatch.setattr(fashion_data, "_apt_get_download", fake_download(deb))
    return arrays, deb


def as_dict(loaded):
    (x_train, y_train), (x_test, y_test) = loaded
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def assert_same(got, want):
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
        assert got[k].dtype == np.uint8


# ----- idx parsing --------------------------------------------------------------------------

def test_idx_round_trip():
    arrays = tiny_arrays()
    for key in ("x_train", "y_test"):
        out = fashion_data.parse_idx(idx_bytes(arrays[key]), "f", arrays[key].ndim)
        np.testing.assert_array_equal(out, arrays[key])
        assert out.dtype == np.uint8 and out.flags.writeable


@pytest.mark.parametrize("raw, ndim, message", [
    (idx_bytes(np.zeros((2, 28, 28))), 1, r"magic number 0x00000803, expected 0x00000801 .*"
                                          r"not an idx label file"),
    (idx_bytes(np.zeros(3)), 3, r"magic number 0x00000801, expected 0x00000803 .*image"),
    (idx_bytes(np.zeros(3), magic=0x0D01), 1, r"magic number 0x00000d01"),  # float, not ubyte
    (b"\x1f\x8b\x08\x00" + bytes(20), 1, r"magic number 0x1f8b0800"),     # still gzipped
    (b"\x00\x00", 1, r"is truncated: 2 bytes, not even an idx magic number"),
    (idx_bytes(np.zeros((2, 28, 28)))[:10], 3, r"is truncated: 10 bytes, shorter than its "
                                              r"16-byte idx header"),
    (idx_bytes(np.zeros((2, 28, 28)))[:-1], 3, r"is truncated: 1583 bytes, the header 2x28x28 "
                                              r"needs 1584"),
    (idx_bytes(np.zeros(5)) + b"\x00", 1, r"has extra bytes: 14 bytes, the header 5 needs 13"),
])
def test_bad_idx_files_are_one_line_errors(raw, ndim, message):
    with pytest.raises(UserError, match=message) as err:
        fashion_data.parse_idx(raw, "some-file", ndim)
    assert str(err.value).startswith("some-file") and "\n" not in str(err.value)


def test_bad_gzip_is_one_line_error(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((3, 28, 28))))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "plain.gz").write_bytes(idx_bytes(np.zeros((3, 28, 28))))
    for name in ("cut.gz", "plain.gz"):
        with pytest.raises(UserError, match=f"{name} is not a complete gzip file") as err:
            fashion_data.read_idx_gz(tmp_path / name, 3)
        assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="does not exist"):
        fashion_data.read_idx_gz(tmp_path / "missing.gz", 3)


# ----- the Debian path with fake packages ---------------------------------------------------

@needs_dpkg
def test_debian_fetch_verifies_and_fills_the_keras_cache(sandbox, monkeypatch):
    arrays, deb = serve_fake_debian(sandbox, monkeypatch)
    assert_same(as_dict(data.load_dataset("fashion")), arrays)

    cache = fashion_data.fashion_cache_dir()
    assert cache == sandbox / "keras" / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(fashion_data.FASHION_FILES.values())  # no temp files
    # The next run reads the cache: no download at all.
    monkeypatch.setattr(fashion_data, "_apt_get_download", lambda spec, workdir: pytest.fail("fetched again"))
    assert_same(as_dict(fashion_data.load_fashion()), arrays)


@needs_dpkg
def test_deb_with_wrong_digest_is_not_unpacked(sandbox, monkeypatch):
    good, bad = tiny_arrays(), tiny_arrays()
    bad["x_test"][0, 0, 0] ^= 1
    good_deb = build_deb(sandbox, good, "good")
    monkeypatch.setattr(fashion_data, "FASHION_EXPECTED", expected_for(good))
    monkeypatch.setattr(fashion_data, "FASHION_DEB_SHA256", hashlib.sha256(good_deb.read_bytes()).hexdigest())
    monkeypatch.setattr(fashion_data, "_apt_get_download", fake_download(build_deb(sandbox, bad, "bad")))
    workdir = sandbox / "work"
    workdir.mkdir()
    with pytest.raises(UserError, match=r"_all\.deb fails its SHA-256 check; refusing to unpack it"):
        fashion_data.fetch_fashion_debian(workdir)
    assert not (workdir / "unpacked").exists()
    with pytest.raises(UserError, match="fails its SHA-256 check") as err:
        fashion_data.load_fashion()
    assert "\n" not in str(err.value)
    assert not fashion_data.fashion_cache_dir().exists()


@needs_dpkg
def test_deb_with_tampered_contents_is_refused(sandbox, monkeypatch):
    """A .deb that passes its own digest (injected) still has to match the array digests."""
    good, bad = tiny_arrays(), tiny_arrays()
    bad["y_train"][3] = 4
    bad_deb = build_deb(sandbox, bad, "bad")
    monkeypatch.setattr(fashion_data, "FASHION_EXPECTED", expected_for(good))
    monkeypatch.setattr(fashion_data, "FASHION_DEB_SHA256", hashlib.sha256(bad_deb.read_bytes()).hexdigest())
    monkeypatch.setattr(fashion_data, "_apt_get_download", fake_download(bad_deb))
    with pytest.raises(UserError, match=r"'y_train' does not match the Fashion-MNIST SHA-256") as err:
        fashion_data.load_fashion()
    assert "\n" not in str(err.value)
    assert not fashion_data.fashion_cache_dir().exists()


@needs_dpkg
def test_deb_without_the_idx_files_is_refused(sandbox, monkeypatch):
    root = sandbox / "empty-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@e.org>\nDescription: x\n")
    deb = sandbox / "empty.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    with pytest.raises(UserError, match=r"has no usr/share/datasets/fashion-mnist/train-labels"):
        fashion_data.fetch_fashion_debian(sandbox, download=fake_download(deb),
                                  deb_sha256=hashlib.sha256(deb.read_bytes()).hexdigest())


@needs_dpkg
def test_corrupt_cache_is_fetched_again(sandbox, monkeypatch):
    arrays, deb = serve_fake_debian(sandbox, monkeypatch)
    cache = fashion_data.fashion_cache_dir()
    cache.mkdir(parents=True)
    for fname in fashion_data.FASHION_FILES.values():
        (cache / fname).write_bytes(b"not gzip")
    assert_same(as_dict(fashion_data.load_fashion()), arrays)
    assert_same(fashion_data.read_idx_folder(cache), arrays)  # rewritten, now valid


@needs_dpkg
def test_unwritable_cache_still_returns_the_data(sandbox, monkeypatch):
    arrays, deb = serve_fake_debian(sandbox, monkeypatch)
    (sandbox / "keras").write_text("a file where the Keras folder should be")
    assert_same(as_dict(fashion_data.load_fashion()), arrays)


def test_no_source_is_one_line_saying_what_was_tried(sandbox, monkeypatch):
    def apt_fails(spec, workdir):
        raise UserError(f"apt-get download {spec} failed (E: Unable to locate package)")
    monkeypatch.setattr(fashion_data, "_apt_get_download", apt_fails)
    with pytest.raises(UserError) as err:
        data.load_dataset("fashion")
    message = str(err.value)
    assert "\n" not in message
    for part in ("no Fashion-MNIST source worked", "Keras cache", "(0 of 4 files)",
                 "Keras download (OSError)",
                 "dataset-fashion-mnist=0.0~git20200523.55506a9-1", "Unable to locate package",
                 "--data PATH", "FASHION_NPZ"):
        assert part in message


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_real_apt_get_failure_is_one_line(sandbox, monkeypatch):
    monkeypatch.setattr(fashion_data, "_apt_get_download", REAL_APT_GET_DOWNLOAD)
    monkeypatch.setattr(fashion_data, "FASHION_DEBIAN_VERSION", "0.0-no-such-version")
    with pytest.raises(UserError, match=r"apt-get download dataset-fashion-mnist=0\.0-no-such-"
                                        r"version failed \(E: ") as err:
        fashion_data.fetch_fashion_debian(sandbox)
    assert "\n" not in str(err.value)


# ----- explicit files -----------------------------------------------------------------------

def test_explicit_npz_by_path_and_environment(sandbox, monkeypatch):
    arrays = tiny_arrays()
    monkeypatch.setattr(fashion_data, "FASHION_EXPECTED", expected_for(arrays))
    path = sandbox / "fashion.npz"
    np.savez_compressed(path, **arrays)
    assert_same(as_dict(data.load_dataset("fashion", path)), arrays)
    monkeypatch.setenv("FASHION_NPZ", str(path))
    assert_same(as_dict(fashion_data.load_fashion()), arrays)


def test_bad_explicit_files_are_one_line_errors(sandbox, monkeypatch):
    arrays = tiny_arrays()
    monkeypatch.setattr(fashion_data, "FASHION_EXPECTED", expected_for(arrays))
    cases = {"missing.npz": "does not exist"}
    (sandbox / "junk.npz").write_bytes(b"not a zip file")
    cases["junk.npz"] = "is corrupt or truncated"
    tampered = dict(arrays, x_train=arrays["x_train"] ^ np.uint8(1))
    np.savez(sandbox / "tampered.npz", **tampered)
    cases["tampered.npz"] = "'x_train' does not match the Fashion-MNIST SHA-256"
    np.savez(sandbox / "wrong-shape.npz", **dict(arrays, y_test=arrays["y_test"][:3]))
    cases["wrong-shape.npz"] = r"'y_test' is uint8\[3\], expected uint8\[4\]"
    np.savez(sandbox / "three.npz", **{k: arrays[k] for k in ("x_train", "y_train", "x_test")})
    cases["three.npz"] = "has no array 'y_test'"
    for name, message in cases.items():
        with pytest.raises(UserError, match=message) as err:
            fashion_data.load_fashion(sandbox / name)
        assert "\n" not in str(err.value) and name in str(err.value)


def test_mnist_is_not_fashion_mnist(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(UserError, match="'x_train' does not match the Fashion-MNIST SHA-256"):
        data.load_dataset("fashion", path)


def test_load_dataset_mnist_is_load_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = data.load_dataset("mnist")
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    np.testing.assert_array_equal(x_test, mnist[1][0])
    with pytest.raises(UserError, match="unknown dataset 'cifar': use one of mnist, fashion"):
        data.load_dataset("cifar")


# ----- the real data ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion():
    try:
        return data.load_dataset("fashion")
    except UserError as e:
        pytest.skip(f"Fashion-MNIST not available here: {e}")


def test_known_facts(fashion):
    (x_train, y_train), (x_test, y_test) = fashion
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.dtype == np.uint8
    assert y_train[:4].tolist() == [9, 0, 0, 3]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.mean() == pytest.approx(72.94, abs=0.005)


def test_real_debian_package(tmp_path):
    """The real offline source: apt-get download, the .deb digest, dpkg-deb, the array digests."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb")
    try:
        fetched = fashion_data.fetch_fashion_debian(tmp_path)
    except UserError as e:
        if str(e).startswith("apt-get"):
            pytest.skip(f"Debian package not reachable: {e}")
        raise
    fashion_data.verify_fashion(fetched["arrays"], "Debian package")
    assert sorted(fetched["files"]) == sorted(fashion_data.FASHION_FILES.values())


# ----- class names --------------------------------------------------------------------------

@pytest.mark.parametrize("text, index", [
    ("6", 6), (" 0 ", 0), (9, 9), ("shirt", 6), ("Shirt", 6), ("SHIRT", 6), ("t-shirt", 0),
    ("tshirt", 0), ("T-shirt/top", 0), ("top", 0), ("ankle-boot", 9), ("Ankle boot", 9),
    ("ankle_boot", 9), ("boot", 9), ("trousers", 1), ("sneakers", 7), ("Bag", 8), ("dress", 3),
    ("pullover", 2), ("coat", 4), ("sandal", 5),
])
def test_fashion_class_index(text, index):
    assert class_index("fashion", text) == index
    assert class_index(FASHION, text) == index


@pytest.mark.parametrize("text", ["10", "-1", "shrt", "", "6.0", "boots and bags", None, True, 10])
def test_fashion_bad_class_is_one_line_listing_names(text):
    with pytest.raises(UnknownClassError) as err:
        class_index("fashion", text)
    message = str(err.value)
    assert message.startswith(f"Fashion-MNIST has no class {text!r}: use 0-9 or a name")
    assert "T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot" in message
    assert "\n" not in message
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)


def test_mnist_class_index():
    assert [class_index("mnist", str(d)) for d in range(10)] == list(range(10))
    assert class_index("mnist", "seven") == 7
    for bad in ("10", "shirt", "x"):
        with pytest.raises(ValueError, match=rf"^MNIST has no digit '{bad}': use 0-9$"):
            class_index("mnist", bad)


def test_dataset_table():
    assert DATASET_NAMES == ("mnist", "fashion")
    assert MNIST.class_names == tuple("0123456789") and MNIST.class_noun == "digit"
    assert FASHION.class_noun == "class" and FASHION.num_classes == 10
    assert FASHION.class_label(6) == "6 (Shirt)" and MNIST.class_label(6) == "6"
    assert get_dataset("Fashion-MNIST") is FASHION and get_dataset("mnist") is MNIST
    with pytest.raises(UserError, match="unknown dataset 'emnist'"):
        get_dataset("emnist")


def test_datasets_module_is_import_cheap():
    code = ("import sys, mnist_cnn.data.registry; "
            "print(sorted(m for m in ('numpy', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
