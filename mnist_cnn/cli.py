"""Command line: `python -m mnist_cnn COMMAND [options]` (the Makefile's targets call this).

The commands live in `mnist_cnn.app`, one module each (add, check, run); this module keeps the
entry points that scripts and tests name: `main`, `build_parser`.
"""

from __future__ import annotations

from mnist_cnn.app import build_parser, main
from mnist_cnn.app.common import add_dataset_option, parse_class, quiet_tensorflow_import
from mnist_cnn.config import analyze_out_dir

__all__ = ["main", "build_parser", "add_dataset_option", "parse_class", "quiet_tensorflow_import",
           "analyze_out_dir"]
