"""Units and concepts: each unit's Spearman rank correlation with each measurement, and the
causal check (zero the units most tied to loops, see who loses accuracy)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def spearman(acts: np.ndarray, values: dict) -> dict:
    """Spearman correlation of every unit with every measurement.

    Parameters
    ----------
    acts : (N, units) activations (map peaks); values : measurement -> (N,)

    Returns
    -------
    measurement -> (units,) correlations (0 for a unit constant on the images: a dead unit).
    """
    ra = rankdata(acts, axis=0)
    ra = ra - ra.mean(axis=0)
    norm_a = np.sqrt((ra * ra).sum(axis=0))
    out = {}
    for name, v in values.items():
        rv = rankdata(v) - (len(v) + 1) / 2
        denom = norm_a * np.sqrt((rv * rv).sum())
        out[name] = np.where(denom > 0, (rv @ ra) / np.where(denom > 0, denom, 1), 0.0)
    return out


def strongest(rhos: dict, top: int = 3) -> list:
    """One unit's `top` measurements by |rho| (ties: the first named): [(name, rho)].

    Parameters
    ----------
    rhos : measurement -> the unit's rho; top : how many

    Returns
    -------
    [(name, rho)], strongest first.
    """
    return sorted(((n, float(r)) for n, r in rhos.items()), key=lambda p: -abs(p[1]))[:top]


def most_tied(corr: dict, top: int = 3) -> dict:
    """Per measurement the `top` units by |rho| (ties: the lower unit first).

    Parameters
    ----------
    corr : measurement -> (units,) rho (a list or an array); top : units per measurement

    Returns
    -------
    measurement -> [(unit index, rho)], strongest first.
    """
    out = {}
    for n, c in corr.items():
        c = np.asarray(c, np.float64)
        out[n] = [(int(u), float(c[u])) for u in np.argsort(-np.abs(c), kind="stable")[:top]]
    return out


def causal_check(model, net, layer: str, acts: np.ndarray, y: np.ndarray, loop_corr: np.ndarray,
                 k: int, draws: int = 10, seed: int = 0, with_loops=(0, 6, 8, 9),
                 without=(1, 7)) -> dict:
    """Accuracy with the k units of `layer` most correlated with loops set to zero, against k
    random units (several draws), on digits with loops and without.

    Parameters
    ----------
    model, net : the model and `describe(model)`; layer : a conv layer
    acts : (N, H, W, C) its output on the test images; y : (N,) labels
    loop_corr : (C,) Spearman rho of each unit with the loop count; k : units to zero

    Returns
    -------
    dict: units (the zeroed ones), base / loop_units / random_mean / random_std accuracies per
    group ("with loops", "without"), and the drops.
    """
    import tensorflow as tf

    from analysis.concepts.activations import logits_after

    groups = {"with loops": np.isin(y, with_loops), "without": np.isin(y, without)}
    a = tf.convert_to_tensor(acts, tf.float32)

    def accuracy(mask):
        pred = np.argmax(np.asarray(logits_after(model, net, layer, a * mask)), axis=1)
        return {g: float((pred[m] == y[m]).mean()) for g, m in groups.items()}

    channels = acts.shape[-1]
    units = np.argsort(-loop_corr, kind="stable")[:k]

    def mask_of(chosen):
        m = np.ones(channels, np.float32)
        m[chosen] = 0
        return m

    base = accuracy(np.ones(channels, np.float32))
    loop = accuracy(mask_of(units))
    rng = np.random.default_rng(seed)
    rand = [accuracy(mask_of(rng.choice(channels, k, replace=False))) for _ in range(draws)]
    result = {"layer": layer, "k": int(k), "units": [int(u) for u in units], "draws": draws}
    for g in groups:
        r = np.array([d[g] for d in rand])
        result[g] = {"images": int(groups[g].sum()), "base": base[g], "loop_units": loop[g],
                     "random_mean": float(r.mean()), "random_std": float(r.std()),
                     "drop_loop_units": base[g] - loop[g], "drop_random": base[g] - float(r.mean())}
    return result


def unit_concepts(acts: dict, x: np.ndarray, dataset: str = "mnist", cache=None) -> dict:
    """Every unit's Spearman correlation with every measurement, for the explorer's pages.

    Parameters
    ----------
    acts : layer -> (N, units) activations on the images x (the explorer's: a conv map's peak,
        a dense unit's value); x : the images (N, 28, 28) uint8 or (N, 28, 28, 1) in [0, 1]
    dataset : which measurements (`measure.names_for`); cache : measurement cache folder

    Returns
    -------
    layer -> measurement -> (units,) rho
    """
    from analysis.concepts.measure import measure_cached, names_for

    values, _ = measure_cached(x, names_for(dataset), cache)
    return {layer: spearman(a, values) for layer, a in acts.items()}
