"""Permutation p-values and Holm's step-down correction (no statsmodels)."""

from __future__ import annotations

import numpy as np


def holm(p, alpha: float = 0.05):
    """Holm-Bonferroni: adjusted p-values and which hypotheses are rejected at `alpha`.

    Parameters
    ----------
    p : array of p-values (any shape)
    alpha : family-wise error rate

    Returns
    -------
    (adjusted p-values, rejected bool), both of p's shape. Adjusted p_(i) = max over j <= i of
    min(1, (m - j + 1) p_(j)) for the sorted p-values (Holm 1979).
    """
    p = np.asarray(p, float)
    flat = p.ravel()
    m = flat.size
    order = np.argsort(flat, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * flat[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    adjusted = adjusted.reshape(p.shape)
    return adjusted, adjusted <= alpha


def two_sided_p(score: float, null: np.ndarray) -> float:
    """Permutation p-value of `score` against the `null` scores: the fraction (with the observed
    one counted, so never 0) at least as far from the null's mean on either side."""
    centre = null.mean()
    far = np.abs(null - centre) >= abs(score - centre) - 1e-12
    return (1 + far.sum()) / (1 + len(null))
