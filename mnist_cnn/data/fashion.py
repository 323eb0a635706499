"""Fashion-MNIST, offline-first and verified (`mnist_cnn.data.load_fashion`; the source chain of
steps 2-4 is `mnist_cnn.data.sources`, shared with MNIST).

`load_fashion()` returns what `keras.datasets.fashion_mnist.load_data()` returns (uint8,
60000/10000 images of 28x28, original order) from the first source that works:

1. an explicit `.npz` with the four Keras arrays (`path`, i.e. `--data PATH`, or FASHION_NPZ);
2. the Keras cache folder `$KERAS_HOME/datasets/fashion-mnist/` (default `~/.keras`), the four
   idx `.gz` files Keras' own loader keeps there;
3. the Keras download;
4. Debian's package `dataset-fashion-mnist` (`apt-get download`, no root needed once the
   package lists exist; unpacked with `dpkg-deb -x`, never installed). The `.deb` is checked
   against its SHA-256 before it is unpacked; its idx files are parsed here and written to the
   Keras cache folder of step 2.

Whatever the source, the four decoded arrays must match `FASHION_EXPECTED` (shapes and
SHA-256 of the raw C-order bytes), so every source yields the same bytes or an error.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import numpy as np

from mnist_cnn.data import sources
from mnist_cnn.data.verify import check_arrays, keras_cache_path, read_keras_npz
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import atomic_path


FASHION_DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_DEBIAN_VERSION = "0.0~git20200523.55506a9-1"
# SHA-256 of the .deb as Debian bookworm ships it (the same digest as in apt's signed
# Packages index: `apt-cache show dataset-fashion-mnist=0.0~git20200523.55506a9-1`).
FASHION_DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
FASHION_DEBIAN_DIR = "usr/share/datasets/fashion-mnist"

# Array name -> file name, in the order Keras' loader reads them.
FASHION_FILES = {
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_train": "train-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
}

# Array name -> (shape, SHA-256 of the raw C-order bytes), computed from the Debian package
# above. Debian re-gzipped the files (the .gz digests differ from Zalando's), but the
# decompressed idx files are byte-identical to upstream's: their SHA-256 (train-images
# c59f468a..., train-labels bad3541b..., t10k-images 5b4141f0..., t10k-labels 0402a96d...)
# are the ones published for Zalando's originals. Tests replace this table to pass tiny data.
FASHION_EXPECTED = {
    "x_train": ((60000, 28, 28),
                "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"),
    "y_train": ((60000,), "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7"),
    "x_test": ((10000, 28, 28),
               "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"),
    "y_test": ((10000,), "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"),
}

# idx magic numbers: 0x00 0x00, data type 0x08 (unsigned byte), number of dimensions.
_IDX_UBYTE = 0x08


def fashion_cache_dir() -> Path:
    """Keras' Fashion-MNIST folder, `$KERAS_HOME/datasets/fashion-mnist` (default `~/.keras`)."""
    return keras_cache_path().parent / "fashion-mnist"


def parse_idx(raw: bytes, source: str, ndim: int) -> np.ndarray:
    """Decode an uncompressed idx file of unsigned bytes with `ndim` dimensions.

    Parameters
    ----------
    raw : bytes
        The whole file: magic number (0x00000801 for labels, 0x00000803 for images), `ndim`
        big-endian uint32 sizes, then the data.
    source : str
        Names the file in error messages.
    ndim : int
        Expected number of dimensions (1 for labels, 3 for images).

    Returns
    -------
    numpy.ndarray
        A writable uint8 array of the shape the header gives.

    Raises
    ------
    UserError
        One line naming `source`: wrong magic number, truncated header or data, extra bytes.
    """
    kind = {1: "label", 3: "image"}.get(ndim, f"{ndim}-d")
    want = (_IDX_UBYTE << 8) | ndim
    if len(raw) < 4:
        raise UserError(f"{source} is truncated: {len(raw)} bytes, not even an idx magic number")
    magic = int.from_bytes(raw[:4], "big")
    if magic != want:
        raise UserError(f"{source}: idx magic number 0x{magic:08x}, expected 0x{want:08x} "
                        f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}): "
                        f"not an idx {kind} file")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{source} is truncated: {len(raw)} bytes, shorter than its "
                        f"{header}-byte idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != size:
        problem = "is truncated" if len(raw) < size else "has extra bytes"
        raise UserError(f"{source} {problem}: {len(raw)} bytes, the header "
                        f"{'x'.join(map(str, shape))} needs {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx_gz(path, ndim: int, source: str | None = None) -> np.ndarray:
    """Read a gzip-compressed idx file (`parse_idx`); a bad gzip stream is a one-line UserError."""
    import zlib

    source = source or str(path)
    try:
        raw = gzip.decompress(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{source} does not exist") from None
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise UserError(f"{source} is not a complete gzip file ({type(e).__name__}: {e})") from None
    return parse_idx(raw, source, ndim)


def read_idx_folder(folder, source: str | None = None) -> dict:
    """The four arrays from a folder holding the `FASHION_FILES` (not verified here)."""
    folder = Path(folder)
    return {name: read_idx_gz(folder / fname, 3 if name.startswith("x") else 1,
                              f"{source}/{fname}" if source else None)
            for name, fname in FASHION_FILES.items()}


def verify_fashion(arrays: dict, source: str, expected: dict | None = None) -> dict:
    """`check_arrays` against `expected` (default: the module's `FASHION_EXPECTED`, looked up at
    call time so tests can replace it), which maps each array name to (shape, SHA-256)."""
    return check_arrays(arrays, source, FASHION_EXPECTED if expected is None else expected,
                        "Fashion-MNIST")


def read_fashion_npz(path) -> dict:
    """Read and verify the four Fashion-MNIST arrays from a Keras-style `.npz` (no pickles)."""
    return verify_fashion(read_keras_npz(path, FASHION_FILES, "Fashion-MNIST"),
                          f"Fashion-MNIST file {path}")


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or ["no output"])[-1]


def _apt_get_download(spec: str, workdir: Path) -> Path:
    """`apt-get download SPEC` into `workdir`; returns the `.deb`. Tests replace this hook."""
    try:
        result = subprocess.run(["apt-get", "download", spec], cwd=workdir,
                                capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise UserError("apt-get not found (not a Debian-like system)") from None
    except subprocess.TimeoutExpired:
        raise UserError("apt-get download took over 10 minutes") from None
    debs = sorted(Path(workdir).glob("*.deb"))
    if result.returncode != 0 or not debs:
        raise UserError(f"apt-get download {spec} failed ({_last_error_line(result.stderr)}; "
                        "as root, `apt-get update` fetches the package lists)")
    return debs[0]


def fetch_fashion_debian(workdir, download=None, deb_sha256: str | None = None) -> dict:
    """Fetch Debian's `dataset-fashion-mnist`, check the `.deb`, unpack it and read the idx files.

    Parameters
    ----------
    workdir : str or Path
        An empty scratch folder (the `.deb` and its unpacked tree go there).
    download : callable, optional
        `download(spec, workdir) -> Path of the .deb`; default `_apt_get_download` (looked up
        at call time, so tests can replace the module attribute).
    deb_sha256 : str, optional
        Expected SHA-256 of the `.deb`; default `FASHION_DEB_SHA256` (looked up at call time).

    Returns
    -------
    dict
        {"arrays": the four decoded arrays (not yet checked against `FASHION_EXPECTED`),
         "files": {file name: the package's .gz bytes}}.

    Raises
    ------
    UserError
        One line: the download failed, the `.deb` fails its digest (then it is not unpacked),
        `dpkg-deb` is missing or fails, or a file is missing or not a valid idx file.
    """
    from mnist_cnn.fileio import sha256_file

    workdir = Path(workdir)
    download = download or _apt_get_download
    deb_sha256 = deb_sha256 or FASHION_DEB_SHA256
    spec = f"{FASHION_DEBIAN_PACKAGE}={FASHION_DEBIAN_VERSION}"
    deb = Path(download(spec, workdir))
    if sha256_file(deb) != deb_sha256:
        raise UserError(f"{deb.name} fails its SHA-256 check; refusing to unpack it")
    root = workdir / "unpacked"
    try:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)],
                                capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise UserError("dpkg-deb not found; cannot unpack the Debian package") from None
    if result.returncode != 0:
        raise UserError(f"dpkg-deb -x {deb.name} failed ({_last_error_line(result.stderr)})")
    folder = root / FASHION_DEBIAN_DIR
    files = {}
    for fname in FASHION_FILES.values():
        if not (folder / fname).is_file():
            raise UserError(f"{deb.name} has no {FASHION_DEBIAN_DIR}/{fname}")
        files[fname] = (folder / fname).read_bytes()
    arrays = read_idx_folder(folder, source=f"{deb.name}:{FASHION_DEBIAN_DIR}")
    return {"arrays": arrays, "files": files}


def write_fashion_cache(folder, files: dict):
    """Write the idx `.gz` files into `folder`, each atomically (labels before images)."""
    for fname in FASHION_FILES.values():
        with atomic_path(Path(folder) / fname, suffix=".tmp") as tmp:
            tmp.write_bytes(files[fname])


def _keras_fashion_download() -> dict:
    import keras  # heavy; only reached when no verified local copy exists

    (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def _read_fashion_cache():
    """The verified arrays of the Keras cache folder, or why there are none ("0 of 4 files")."""
    folder = fashion_cache_dir()
    present = sum((folder / f).exists() for f in FASHION_FILES.values())
    if present < len(FASHION_FILES):
        return f"{present} of {len(FASHION_FILES)} files"
    return verify_fashion(read_idx_folder(folder), f"Keras cache {folder}")


def _fetch_debian_to_cache(workdir) -> tuple:
    """Step 4: (the Debian package's arrays, a function writing its .gz files to the cache)."""
    fetched = fetch_fashion_debian(workdir)
    return fetched["arrays"], lambda: write_fashion_cache(fashion_cache_dir(), fetched["files"])


def _load_fashion_default() -> dict:
    """Steps 2-4 of `load_fashion` (`sources.load`; the hooks are looked up at call time, so
    tests can replace them).

    The Debian copy is cached as the four idx `.gz` files in Keras' own folder rather than as
    an `.npz`: it is the place and format `keras.datasets.fashion_mnist.load_data()` reads
    (Keras checks no hash for these files), so after one fetch Keras' loader works offline too,
    and one reader (step 2) serves a Keras download and a Debian fetch alike. The package's
    `.gz` bytes are written unchanged, after their decoded arrays passed verification.
    """
    spec = f"{FASHION_DEBIAN_PACKAGE}={FASHION_DEBIAN_VERSION}"
    return sources.load(sources.Chain(
        title="Fashion-MNIST", cache=f"{fashion_cache_dir()}/", read_cache=_read_fashion_cache,
        download=lambda: _keras_fashion_download(), mirror=f"Debian package {spec}",
        fetch_mirror=lambda workdir: _fetch_debian_to_cache(workdir), verify=verify_fashion,
        hint="Pass an .npz with x_train, y_train, x_test, y_test via --data PATH (DATA=) or "
             "FASHION_NPZ"))


def load_fashion(path=None):
    """Load Fashion-MNIST as `keras.datasets.fashion_mnist.load_data()` returns it, offline.

    Parameters
    ----------
    path : str or Path, optional
        An explicit Keras-style `.npz` (keys x_train, y_train, x_test, y_test). Default: the
        `FASHION_NPZ` environment variable, then the Keras cache folder, the Keras download,
        and Debian's `dataset-fashion-mnist` package.

    Returns and Raises
    ------------------
    As `mnist_cnn.data.mnist.load_mnist`: the four uint8 arrays; UserError (one line saying what
    was tried and how to pass a file) for a bad explicit file or when no source works.
    """
    path = path or os.environ.get("FASHION_NPZ")
    a = read_fashion_npz(path) if path else _load_fashion_default()
    return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])


