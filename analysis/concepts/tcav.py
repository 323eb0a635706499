"""TCAV (Kim et al. 2018) with a permutation null and Holm's correction.

A concept is two sets of training images chosen by a measurement (`concept_sets`). Its CAV in a
layer is the normal of a linear classifier (ridge, labels +-1, on the centred activations)
separating them. The TCAV score of class c is the fraction of c's test images whose logit c
grows along the CAV (positive directional derivative). The null: the same images with their
concept labels shuffled (`permutations` times); the p-value is two-sided. Ridge in its dual
form makes every shuffle one matrix product, so thousands cost seconds.
"""

from __future__ import annotations

import numpy as np

from analysis.concepts.stats import holm, two_sided_p


def concept_sets(values: dict, names) -> dict:
    """Concepts from measurements: name -> (positive mask, negative mask) over the images.

    "loop": at least one closed loop vs none; every other measurement: its top quartile vs its
    bottom quartile (e.g. "thickness": thick vs thin strokes)."""
    sets = {}
    for name in names:
        v = values[name]
        if name == "loops":
            sets["loop"] = (v > 0, v == 0)
        elif name not in ("endpoints", "junctions"):
            lo, hi = np.quantile(v, [0.25, 0.75])
            if hi > lo:
                sets[name] = (v >= hi, v <= lo)
    return sets


def cav_null_scores(feats: np.ndarray, labels: np.ndarray, grads: dict, permutations: int,
                    rng, ridge: float = 1.0) -> dict:
    """TCAV scores of each class along the CAV of `labels` and of its shuffles.

    Parameters
    ----------
    feats : (n, d) activations of the concept images (flattened layer output)
    labels : (n,) bool, True for the concept's positive set
    grads : class -> (m, d) logit gradients of the class's test images at the same layer
    permutations : shuffles of the labels for the null; rng : numpy Generator

    Returns
    -------
    class -> (observed score, null scores (permutations,))
    """
    x = feats.reshape(len(feats), -1).astype(np.float64)
    x = x - x.mean(axis=0)
    scale = np.sqrt((x * x).sum() / len(x)) or 1.0
    x /= scale
    y = np.where(labels, 1.0, -1.0)
    ys = np.stack([y] + [rng.permutation(y) for _ in range(permutations)], axis=1)
    ys -= ys.mean(axis=0)
    k = x @ x.T
    alpha = np.linalg.solve(k + ridge * len(x) * np.eye(len(x)), ys)  # CAV_j = x.T alpha_j
    out = {}
    for cls, g in grads.items():
        directional = (g.astype(np.float64) @ x.T) @ alpha      # (m, 1 + permutations)
        s = (directional > 0).mean(axis=0)
        out[cls] = (float(s[0]), s[1:])
    return out


def tcav_table(layer_feats: dict, concept_masks: dict, layer_grads: dict, per_set: int = 150,
               permutations: int = 2000, seeds=(0, 1, 2), alpha: float = 0.05) -> list:
    """TCAV rows for every (class, concept, layer), Holm-corrected over all of them.

    Parameters
    ----------
    layer_feats : layer -> (N, d) activations of the candidate concept images
    concept_masks : concept -> (positive, negative) masks over those N images
    layer_grads : layer -> {class: (m, d) gradients}
    per_set : images drawn per side of a concept (fewer when a side has fewer)
    permutations : null size; seeds : one draw of the concept images per seed (the first gives
        the p-value, all give the spread)

    Returns
    -------
    list of dicts: class, concept, layer, score (first seed), mean and std over seeds, null mean,
    p, p_holm, significant.
    """
    rows = {}
    for concept, (pos, neg) in concept_masks.items():
        for s_i, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            n = min(per_set, pos.sum(), neg.sum())
            if n < 10:
                break
            pick = np.concatenate([rng.choice(np.flatnonzero(pos), n, replace=False),
                                   rng.choice(np.flatnonzero(neg), n, replace=False)])
            labels = np.arange(2 * n) < n
            for layer, feats in layer_feats.items():
                perms = permutations if s_i == 0 else 0
                res = cav_null_scores(feats[pick], labels, layer_grads[layer], perms, rng)
                for cls, (score, null) in res.items():
                    row = rows.setdefault((cls, concept, layer), {"scores": []})
                    row["scores"].append(score)
                    if s_i == 0:
                        row["null_mean"] = float(null.mean())
                        row["p"] = two_sided_p(score, null)
    keys = [k for k in rows if "p" in rows[k]]
    adjusted, rejected = holm([rows[k]["p"] for k in keys], alpha)
    table = []
    for key, p_h, sig in zip(keys, adjusted, rejected):
        r = rows[key]
        table.append({"class": int(key[0]), "concept": key[1], "layer": key[2],
                      "score": r["scores"][0], "mean": float(np.mean(r["scores"])),
                      "std": float(np.std(r["scores"])), "null_mean": r["null_mean"],
                      "p": float(r["p"]), "p_holm": float(p_h), "significant": bool(sig)})
    return table
