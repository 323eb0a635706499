"""TCAV (Kim et al. 2018) with a permutation null and Holm's correction.

A concept is two sets of training images chosen by a measurement (`concept_sets`). Its CAV in a
layer is the normal of a linear classifier (ridge, labels +-1, on the centred activations)
separating them. Two numbers per class c:

- the TCAV score: the fraction of c's test images whose logit c grows along the CAV (Kim et
  al.'s sign count). On a small CNN the class's gradients point almost the same way, so nearly
  every direction gives 0 or 1 (measured: a random split of the same images scores 0 or 1 as
  often as the concept does), and a test on the score alone can find nothing;
- the magnitude: the mean directional derivative of logit c along the unit CAV, divided by the
  mean gradient norm (a cosine in [-1, 1]). This is what the significance test uses.

The null: the same images with their concept labels shuffled, `permutations` times; the p-value
is two-sided. Ridge in its dual form, solved once in the eigenbasis of the images' Gram matrix,
makes every shuffle a matrix-vector product, so ten thousand shuffles cost a second.
"""

from __future__ import annotations

import numpy as np

from analysis.concepts.stats import holm, two_sided_p

SCORE_NULL = 500  # shuffles whose sign-count scores are computed for the null's mean score


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
    """TCAV score and magnitude of each class along the CAV of `labels` and of its shuffles.

    Parameters
    ----------
    feats : (n, d) activations of the concept images (flattened layer output)
    labels : (n,) bool, True for the concept's positive set
    grads : class -> (m, d) logit gradients of the class's test images at the same layer
    permutations : shuffles of the labels for the null; rng : numpy Generator
    ridge : the ridge penalty, per image, on activations scaled to unit mean square

    Returns
    -------
    class -> dict: score (sign count), magnitude, null (permutations,) magnitudes of the
    shuffles, null_score (the mean sign count of the first SCORE_NULL shuffles, or nan).
    """
    x = feats.reshape(len(feats), -1).astype(np.float64)
    x = x - x.mean(axis=0)
    scale = np.sqrt((x * x).sum() / len(x)) or 1.0
    x /= scale
    y = np.where(labels, 1.0, -1.0)
    ys = np.concatenate([y[:, None], rng.permuted(np.tile(y, (permutations, 1)), axis=1).T], 1)
    ys -= ys.mean(axis=0)                                   # (n, 1 + permutations)
    # K = V diag(w) V.T; alpha = V diag(1 / (w + lam)) V.T y; CAV = x.T alpha,
    # |CAV|^2 = alpha.T K alpha = sum_k w_k z_k^2 / (w_k + lam)^2 with z = V.T y.
    w, v = np.linalg.eigh(x @ x.T)
    w = np.clip(w, 0.0, None)
    shrink = 1.0 / (w + ridge * len(x))
    z = v.T @ ys
    norms = np.sqrt(np.maximum((w[:, None] * shrink[:, None] ** 2 * z * z).sum(axis=0), 1e-300))
    out = {}
    for cls, g in grads.items():
        g = g.astype(np.float64)
        gx_v = (g @ x.T) @ v                                # (m, n): gradients in the eigenbasis
        along = (gx_v.mean(axis=0) * shrink) @ z / norms    # mean directional derivative
        magnitude = along / (np.linalg.norm(g, axis=1).mean() or 1.0)
        few = min(permutations, SCORE_NULL) + 1
        signs = ((gx_v * shrink) @ z[:, :few]) > 0          # (m, few)
        out[cls] = {"score": float(signs[:, 0].mean()), "magnitude": float(magnitude[0]),
                    "null": magnitude[1:],
                    "null_score": float(signs[:, 1:].mean()) if few > 1 else float("nan")}
    return out


def tcav_table(layer_feats: dict, concept_masks: dict, layer_grads: dict, per_set: int = 150,
               permutations: int = 10000, seeds=(0, 1, 2), alpha: float = 0.05) -> list:
    """TCAV rows for every (class, concept, layer), Holm-corrected over all of them.

    Parameters
    ----------
    layer_feats : layer -> (N, d) activations of the candidate concept images
    concept_masks : concept -> (positive, negative) masks over those N images
    layer_grads : layer -> {class: (m, d) gradients}
    per_set : images drawn per side of a concept (fewer when a side has fewer; a concept with
        fewer than 10 on a side is left out)
    permutations : null size (the smallest p is 1 / (permutations + 1), so with m rows nothing
        can pass Holm unless permutations + 1 > m / alpha); seeds : one draw of the concept
        images per seed (the first gives the p-value, all give the spread); alpha : the
        family-wise error rate

    Returns
    -------
    list of dicts: class, concept, layer, score (sign count, first seed), score_mean and
    score_std over seeds, null_score (the shuffles' mean score), magnitude (first seed),
    magnitude_mean and magnitude_std over seeds, null_sd (the shuffles' magnitude spread), p
    (two-sided, of the magnitude), p_holm, significant.
    """
    rows = {}
    for concept, (pos, neg) in concept_masks.items():
        n = int(min(per_set, pos.sum(), neg.sum()))
        if n < 10:
            continue
        for s_i, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            pick = np.concatenate([rng.choice(np.flatnonzero(pos), n, replace=False),
                                   rng.choice(np.flatnonzero(neg), n, replace=False)])
            labels = np.arange(2 * n) < n
            for layer, feats in layer_feats.items():
                perms = permutations if s_i == 0 else 0
                res = cav_null_scores(feats[pick], labels, layer_grads[layer], perms, rng)
                for cls, r in res.items():
                    row = rows.setdefault((cls, concept, layer), {"scores": [], "magnitudes": []})
                    row["scores"].append(r["score"])
                    row["magnitudes"].append(r["magnitude"])
                    if s_i == 0:
                        row.update(null_score=r["null_score"], null_sd=float(r["null"].std()),
                                   p=two_sided_p(r["magnitude"], r["null"]))
    keys = list(rows)
    adjusted, rejected = holm([rows[k]["p"] for k in keys], alpha)
    table = []
    for key, p_h, sig in zip(keys, adjusted, rejected):
        r = rows[key]
        table.append({"class": int(key[0]), "concept": key[1], "layer": key[2],
                      "score": r["scores"][0], "score_mean": float(np.mean(r["scores"])),
                      "score_std": float(np.std(r["scores"])), "null_score": r["null_score"],
                      "magnitude": r["magnitudes"][0],
                      "magnitude_mean": float(np.mean(r["magnitudes"])),
                      "magnitude_std": float(np.std(r["magnitudes"])), "null_sd": r["null_sd"],
                      "p": float(r["p"]), "p_holm": float(p_h), "significant": bool(sig)})
    return table
