"""What an explorer site on disk says about itself (its site.json): the one lookup that the
explorer (is this folder safe to replace?) and predict (does the model have a site whose
pictures can be reused?) share, so that neither page writer imports the other."""

from __future__ import annotations

import json
from pathlib import Path

GENERATOR = "mnist_cnn explore"  # site.json's "generator": marks a folder as an explorer site


def read_site(folder) -> dict | None:
    """The site.json of the explorer site in `folder`, or None where there is none.

    Parameters
    ----------
    folder : str or Path.

    Returns
    -------
    dict (with "generator", "model": {"sha256": ...}, ...) or None.
    """
    try:
        meta = json.loads((Path(folder) / "site.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("generator") == GENERATOR else None
