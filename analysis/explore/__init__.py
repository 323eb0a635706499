"""`make explore`: a static site with one page per unit of the network (304 units for the
series' network; any accepted model has one page per map of each conv layer and per unit of
each dense layer, read from the model by `mnist_cnn.network.describe`).

Modules: `compute` (the numbers, arrays in and out), `causal` (zeroing units), `circuit` (the
strongest weights), `images` (PNGs from arrays, inline SVG), `render` (the HTML pages and JSON),
`build` (compute, then render). This file holds the checks of the output folder and the model
archive, which import no TensorFlow, and `write_site`, which builds a site atomically.

`--dataset fashion` builds the site of a Fashion-MNIST model (default folder
reports/fashion/explorer, `config.report_dir`); its pages name the classes ("6 (Shirt)").
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from mnist_cnn.errors import UserError


def check_model_file(path) -> None:
    """A .keras model must be a zip archive holding config.json (checked without TensorFlow)."""
    path = Path(path)
    if path.suffix != ".keras" or not path.is_file():
        return  # missing files are reported by the caller; other formats by Keras itself
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise UserError(f"model {path} is not a Keras model archive (no config.json inside)")
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"model {path} is not a Keras model archive ({type(err).__name__})") from None


def is_site(folder: Path) -> bool:
    """Whether `folder` holds an explorer site written by this command (safe to replace)."""
    from analysis.site import read_site

    return read_site(folder) is not None


def check_out(out) -> None:
    """OUT must be a new folder, an empty one, or an earlier explorer site: the build replaces
    it whole, so anything else (a file, a folder with other contents) is refused."""
    out = Path(out)
    if not str(out).strip():
        raise UserError("--out is empty; give a folder such as reports/explorer")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UserError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not is_site(out):
            raise UserError(f"--out {out} is a folder with other contents; the site replaces its "
                            "folder whole, so give a new or empty folder")
        if out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
            raise UserError(f"--out {out} is the current folder or above it; give a subfolder")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: cannot write in {parent}")


def write_site(model, test_data, out, model_path=None, steps: int = 80, starts: int = 5,
               seed: int = 0, precision: str = "auto", dataset: str = "mnist",
               data_source: str = "", log=print) -> dict:
    """Build the explorer site in a temporary folder that replaces `out` only when complete.

    Parameters
    ----------
    model : keras.Model, e.g. `mnist_cnn.load_model(path)`.
    test_data : (x uint8 (N, 28, 28), y (N,)), every class present.
    out : the site's folder: new, empty, or an earlier site (`check_out`).
    model_path : the model's file, named and hashed on the index (None: not recorded).
    steps, starts, seed, precision, dataset, data_source, log : see `build.build_site`.

    Returns
    -------
    dict, the site summary (out/site.json); out/index.html is the start page.
    """
    from analysis.explore.build import build_site
    from mnist_cnn.fileio import atomic_dir

    check_out(out)
    with atomic_dir(Path(out)) as tmp:
        return build_site(model, model_path, test_data, tmp, steps=steps, starts=starts,
                          seed=seed, precision=precision, data_source=data_source,
                          dataset=dataset, log=log)
