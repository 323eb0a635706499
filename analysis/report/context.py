"""What the report's sections share: the `Context` they read and the results they return.

`Context` is built once by `analysis.report.build_report`: the model, the test set, the digit
and its contrast, the evaluation, and a cache so that the feature maps of a class and the
comparison of the two classes are computed once for all sections, and the model's description
(`ctx.net`: its map layers and its last conv layer, which the ranking, probe and ablation study). A section saves its figures
with `ctx.figure` (PNG, with the figure's numbers in an .npz beside it) and its tables with
`ctx.table` (CSV), and returns a `Section` holding them, its text and its summary numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_cnn.data.registry import MNIST, DatasetInfo
from mnist_cnn.fileio import save_figure, save_npz, write_bytes


@dataclass
class Figure:
    """A saved figure: PNG file, caption, and the .npz with the numbers it shows."""
    file: str
    caption: str
    data: str


@dataclass
class Table:
    """A table shown in the report; `file` is its CSV (all rows) when there is one."""
    caption: str
    rows: list  # list of dicts with the same keys
    file: str | None = None
    show: int | None = None  # rows shown in the HTML (default all)


@dataclass
class Section:
    """One part of the page: its anchor `key`, title, text, figures, tables, and the numbers it
    adds to summary.json under "sections" -> key."""
    key: str
    title: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@dataclass
class Context:
    """Everything the sections share. Built once by `build_report`."""
    model: object
    model_path: Path
    out: Path
    x_test: np.ndarray  # float32 (N, 28, 28, 1)
    y_test: np.ndarray
    digit: int
    contrast: int
    contrast_source: str
    evaluation: dict  # from mnist_cnn.evaluate.evaluate
    samples: int = 3
    cmap: str = "viridis"
    layers: tuple = ()  # map layers to draw (build_report: default every map layer)
    seed: int = 0
    dataset: DatasetInfo = MNIST  # what the page calls the classes ("4"; "Shirt") and a class
    cache: dict = field(default_factory=dict)

    @property
    def net(self):
        """The model's description (`mnist_cnn.network.describe`), read once."""
        if "net" not in self.cache:
            from mnist_cnn.network import describe

            self.cache["net"] = describe(self.model)
        return self.cache["net"]

    @property
    def map_layers(self) -> tuple:
        """Names of every layer with (H, W, C) maps, in order."""
        return tuple(i.name for i in self.net.map_layers)

    @property
    def last_conv(self) -> str:
        """The last Conv2D: the layer the ranking, probe, ablation and OIPs study."""
        return self.net.last_conv.name

    @property
    def noun(self) -> str:
        """"digit" (MNIST) or "class" (Fashion-MNIST), for the page's prose."""
        return self.dataset.class_noun

    def name(self, label: int) -> str:
        """How text and figures name class `label`: "4" (MNIST), "Shirt" (Fashion-MNIST)."""
        return self.dataset.class_name(int(label))

    def plural(self, label: int) -> str:
        """"4s" (MNIST), "Shirt images" (Fashion-MNIST)."""
        name = self.name(label)
        return f"{name}s" if self.dataset.name == "mnist" else f"{name} images"

    def a(self, label: int) -> str:
        """"a 4" (MNIST), "a Shirt" / "an Ankle boot" (Fashion-MNIST)."""
        name = self.name(label)
        return f"{'an' if name[0].lower() in 'aeiou8' else 'a'} {name}"

    def figure(self, name: str, fig, caption: str, **arrays) -> Figure:
        """Save `fig` as name.png and `arrays` as name.npz in the report folder."""
        save_figure(fig, self.out / f"{name}.png")
        save_npz(self.out / f"{name}.npz", **arrays)
        return Figure(f"{name}.png", caption, f"{name}.npz")

    def table(self, name: str | None, caption: str, rows: list, show=None) -> Table:
        """A table for the page; with a name, all rows are also written to name.csv."""
        if name:
            write_csv(self.out / f"{name}.csv", rows)
        return Table(caption, rows, f"{name}.csv" if name else None, show)

    def indices(self, label: int) -> np.ndarray:
        """Test-set indices of all images of `label`."""
        return np.flatnonzero(self.y_test == label)

    def sample_indices(self, label: int) -> np.ndarray:
        """The first `samples` correctly classified test images of `label` (then any)."""
        idx = self.indices(label)
        right = idx[self.evaluation["predicted"][idx] == label]
        wrong = idx[self.evaluation["predicted"][idx] != label]
        return np.r_[right, wrong][:self.samples]

    def class_maps(self, label: int) -> dict:
        """{layer: maps} of every conv/pool layer for all test images of `label` (cached)."""
        key = ("maps", label)
        if key not in self.cache:
            from analysis.feature_maps import FeatureExtractor

            if "extractor" not in self.cache:
                self.cache["extractor"] = FeatureExtractor(self.model, self.map_layers)
            self.cache[key] = self.cache["extractor"](self.x_test[self.indices(label)])
        return self.cache[key]

    def comparison(self) -> dict:
        """Statistics and ranking of every layer's maps, DIGIT vs CONTRAST (cached).

        Returns
        -------
        dict {layer: {"stats_digit", "stats_contrast", "scores_digit", "scores_contrast",
        "effect", "ranking", "rows"}}
        """
        if "comparison" not in self.cache:
            from analysis import compare

            a, b = self.class_maps(self.digit), self.class_maps(self.contrast)
            self.cache["comparison"] = {layer: compare.compare_maps(a[layer], b[layer])
                                        for layer in self.map_layers}
        return self.cache["comparison"]


def csv_value(v):
    """A value as one CSV or HTML table cell: lists and tuples become space-separated."""
    return " ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v


def write_csv(path, rows: list) -> None:
    """Rows (dicts with the same keys) as a CSV file with a header, atomically; an empty file
    for no rows."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_value(v) for k, v in r.items()} for r in rows)
    write_bytes(path, buffer.getvalue().encode())
