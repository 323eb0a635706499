"""What both data sets' loaders share (`mnist_cnn.data.mnist`, `mnist_cnn.data.fashion`): where Keras
keeps its files, reading a Keras-style .npz without pickles, and checking arrays against known
shapes and SHA-256 digests of their contents. NumPy only; imports neither loader."""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from mnist_cnn.errors import UserError


def keras_cache_path() -> Path:
    """Where Keras keeps `mnist.npz` (honours KERAS_HOME like Keras does)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def content_digest(array: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def check_arrays(arrays: dict, source: str, expected: dict, title: str) -> dict:
    """Check names, shapes, dtypes and content digests; raise a one-line UserError naming `source`.

    Parameters
    ----------
    arrays : dict name -> ndarray
    source : str
        Where the arrays came from, for the message.
    expected : dict name -> (shape, SHA-256 of the raw bytes)
    title : str
        The data set's name for messages ("MNIST", "Fashion-MNIST").

    Returns
    -------
    dict
        `arrays`, unchanged.
    """
    for name, (shape, digest) in expected.items():
        if name not in arrays:
            raise UserError(f"{source} has no array '{name}': not a Keras {title} file "
                            f"(needs {', '.join(expected)})")
        a = arrays[name]
        if a.shape != tuple(shape) or a.dtype != np.uint8:
            raise UserError(f"{source}: '{name}' is {a.dtype}{list(a.shape)}, "
                            f"expected uint8{list(shape)}: not the {title} data set")
        if content_digest(a) != digest:
            raise UserError(f"{source}: '{name}' does not match the {title} SHA-256 digest; "
                            f"the data is damaged or not {title} (delete a cached copy to re-fetch)")
    return arrays


def read_keras_npz(path, keys, title: str) -> dict:
    """The arrays `keys` of a Keras-style .npz, read without allowing pickles (not verified).

    Raises a one-line UserError for a missing, truncated or corrupt file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in keys if k in f.files}
    except FileNotFoundError:
        raise UserError(f"{title} file {path} does not exist; check the path") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"{title} file {path} is corrupt or truncated ({type(e).__name__}); "
                        "delete it or point --data at a good copy") from None


# Arrays already read and verified in this process, by the state of their file (see `read_once`).
_VERIFIED: dict = {}


def read_once(path, read) -> dict:
    """`read(path)` (a reader that verifies what it reads), once per state of the file.

    The same file read again in the same process, unchanged (same size, modification and change
    times, inode), gives fresh copies of the arrays verified the first time instead of
    decompressing and hashing 55 MB again: a Python session or the test suite reads MNIST many
    times (the suite ~20 times per process, 8 s of CPU). A file that changed in any of these is
    read and verified anew; only the latest file state is kept.
    """
    try:
        st = os.stat(path)
    except OSError:
        return read(path)  # a missing file: the reader says so
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _VERIFIED:
        arrays = read(path)
        _VERIFIED.clear()
        _VERIFIED[key] = arrays
    return {name: a.copy() for name, a in _VERIFIED[key].items()}


def log(message):
    """One line about where the data came from, on stderr ("[data] wrote ...")."""
    print(f"[data] {message}", file=sys.stderr)
