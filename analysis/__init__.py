"""Analyses of the trained CNN, built on `mnist_cnn` (which imports this package only lazily,
from `mnist_cnn.cli` and `mnist_cnn.bench`).

Shared modules: `feature_maps` (the maps of any layers for any images), `compare` (class
statistics, map ranking, probe, ablation), `plots` (figures of maps). One package per command:
`report` (`make analyze`), `oip` (`make oip`), `experiments` (`make experiment(s)`). Compute
functions return arrays; plot functions take arrays and return figures.
"""
