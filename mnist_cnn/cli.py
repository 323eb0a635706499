"""Command line: `python -m mnist_cnn COMMAND [options]` and the `mnist-cnn` script.

The commands live in `mnist_cnn.app`, one module each (add, check, run); this module is the entry
point that `python -m mnist_cnn`, the installed script (pyproject.toml) and tests name.
"""

from __future__ import annotations

from mnist_cnn.app import build_parser, main

__all__ = ["main", "build_parser"]
