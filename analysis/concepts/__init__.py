"""Which human concepts the network uses (issue #26, docs/concepts.md): measurements of every
image (`measure`), linear probes per layer against a random-weights control, TCAV with Holm-
corrected significance, unit-concept rank correlations and a causal check (`run`).

Pure computation and plots; pages are written by analysis/report (the layer rule: this
package imports no page writer).
"""

from analysis.concepts.measure import NAMES, measure, measure_cached, names_for

__all__ = ["NAMES", "measure", "measure_cached", "names_for"]
from analysis.concepts.core import run  # noqa: E402

__all__ += ["run"]
