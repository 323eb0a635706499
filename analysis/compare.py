"""Class comparison: which feature maps separate DIGIT from CONTRAST, and does it matter?

For every map of a layer, over all test images of each class, `class_statistics` gives the
mean activation, the fraction of images in which the map is active, and the mean map itself.
`rank_maps` orders the maps by how well their per-image mean activation separates the two
classes. The ranking is then tested twice, because a picture alone proves nothing:

* `probe_accuracy`: a logistic-regression probe (scikit-learn) on the last conv layer's outputs
  (`conv_3` of the series' network), DIGIT vs CONTRAST, cross-validated; also on only the top-k
  ranked maps, with the ranking recomputed inside each training fold so the held-out fold never
  chooses its own features.
* `ablation`: zero the top-k ranked maps of that layer, finish the forward pass, and measure
  the model's accuracy on the DIGIT and CONTRAST images, next to zeroing k random maps.

`compare_classes(model, x, y, a, b)` does the comparison of every map layer in one call.

Effect size: for map c, let s_i be the spatial mean of map c on image i. AUC_c is the ROC AUC
of s for telling DIGIT (positive) from CONTRAST, i.e. the probability that a random DIGIT image
activates the map more than a random CONTRAST image (ties count one half; the Mann-Whitney U
statistic divided by n_digit * n_contrast). Maps are ranked by separation = |2 AUC - 1|
(0: no separation, 1: perfect), ties broken by |Cohen's d| (difference of class means of s
divided by the pooled standard deviation).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu


def most_confused_with(cm: np.ndarray, digit: int) -> int:
    """The digit most often confused with `digit`, in either direction.

    Parameters
    ----------
    cm : (10, 10) int array, rows true, columns predicted
    digit : int

    Returns
    -------
    int
        argmax over j != digit of cm[digit, j] + cm[j, digit] (images of `digit` called j
        plus images of j called `digit`); ties, including no confusions at all, go to the
        smallest such j.
    """
    cm = np.asarray(cm)
    both = cm[digit, :] + cm[:, digit]
    both[digit] = -1
    return int(np.argmax(both))


def spatial_means(maps: np.ndarray) -> np.ndarray:
    """Per-image, per-map mean activation: (N, H, W, C) -> (N, C); (N, C) is returned as is."""
    maps = np.asarray(maps, dtype=np.float32)
    return maps.mean(axis=(1, 2)) if maps.ndim == 4 else maps


def class_statistics(maps: np.ndarray) -> dict:
    """Statistics of every map of one layer over the images of one class.

    Parameters
    ----------
    maps : float array (N, H, W, C)
        Activations of one layer for all images of the class.

    Returns
    -------
    dict with
        mean_activation (C,): mean over images and positions;
        active_fraction (C,): fraction of images where the map is active, i.e. has any
            value > 0 (for ReLU maps the same as a spatial mean > 0);
        mean_map (H, W, C): the map averaged over the images.
    """
    maps = np.asarray(maps, dtype=np.float32)
    return {"mean_activation": maps.mean(axis=(0, 1, 2)),
            "active_fraction": (maps.max(axis=(1, 2)) > 0).mean(axis=0),
            "mean_map": maps.mean(axis=0)}


def effect_sizes(scores_a: np.ndarray, scores_b: np.ndarray) -> dict:
    """ROC AUC and Cohen's d of every column, class a (positive) against class b.

    Parameters
    ----------
    scores_a, scores_b : (N_a, C) and (N_b, C) arrays, e.g. `spatial_means` of each class.

    Returns
    -------
    dict of (C,) arrays: auc, separation (= |2 auc - 1|), cohens_d, mean_a, mean_b.
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    u = mannwhitneyu(a, b, axis=0, alternative="two-sided").statistic  # U of sample a
    auc = u / (len(a) * len(b))
    pooled = np.sqrt(((len(a) - 1) * a.var(axis=0, ddof=1) + (len(b) - 1) * b.var(axis=0, ddof=1))
                     / (len(a) + len(b) - 2))
    diff = a.mean(axis=0) - b.mean(axis=0)
    # A map that is constant in both classes (often a dead map) separates nothing: d = 0.
    d = np.divide(diff, pooled, out=np.zeros_like(diff), where=pooled > 0)
    auc = np.where(np.isnan(auc), 0.5, auc)
    return {"auc": auc, "separation": np.abs(2 * auc - 1), "cohens_d": d,
            "mean_a": a.mean(axis=0), "mean_b": b.mean(axis=0)}


def rank_maps(scores_a: np.ndarray, scores_b: np.ndarray) -> np.ndarray:
    """Map indices ordered from most to least separating (see the module docstring).

    Parameters
    ----------
    scores_a, scores_b : (N_a, C) and (N_b, C) per-image map scores of the two classes.

    Returns
    -------
    int array (C,): a permutation of range(C).
    """
    e = effect_sizes(scores_a, scores_b)
    # lexsort sorts by the last key first; negate for descending order; index breaks exact ties.
    return np.lexsort((np.arange(len(e["auc"])), -np.abs(e["cohens_d"]), -e["separation"]))


def ranking_table(scores_a, scores_b, stats_a=None, stats_b=None) -> list:
    """One row per map, best first: rank, map, auc, separation, cohens_d, means, active fractions.

    Parameters
    ----------
    scores_a, scores_b : (N_a, C), (N_b, C) per-image map scores.
    stats_a, stats_b : dicts from `class_statistics`, optional (adds active fractions).

    Returns
    -------
    list of dicts (JSON/CSV-ready plain Python numbers).
    """
    e = effect_sizes(scores_a, scores_b)
    rows = []
    for rank, c in enumerate(rank_maps(scores_a, scores_b), start=1):
        row = {"rank": rank, "map": int(c), "auc": round(float(e["auc"][c]), 4),
               "separation": round(float(e["separation"][c]), 4),
               "cohens_d": round(float(e["cohens_d"][c]), 3),
               "mean_digit": round(float(e["mean_a"][c]), 4),
               "mean_contrast": round(float(e["mean_b"][c]), 4)}
        if stats_a is not None and stats_b is not None:
            row["active_digit"] = round(float(stats_a["active_fraction"][c]), 4)
            row["active_contrast"] = round(float(stats_b["active_fraction"][c]), 4)
        rows.append(row)
    return rows


def compare_maps(maps_a, maps_b) -> dict:
    """Everything the report shows about one layer, class a against class b.

    Parameters
    ----------
    maps_a, maps_b : (N_a, H, W, C), (N_b, H, W, C) activations of the layer on each class.

    Returns
    -------
    dict with stats_digit, stats_contrast (`class_statistics`), scores_digit, scores_contrast
    (`spatial_means`), effect (`effect_sizes`), ranking (`rank_maps`), rows (`ranking_table`).
    """
    stats_a, stats_b = class_statistics(maps_a), class_statistics(maps_b)
    sa, sb = spatial_means(maps_a), spatial_means(maps_b)
    return {"stats_digit": stats_a, "stats_contrast": stats_b,
            "scores_digit": sa, "scores_contrast": sb,
            "effect": effect_sizes(sa, sb), "ranking": rank_maps(sa, sb),
            "rows": ranking_table(sa, sb, stats_a, stats_b)}


def compare_classes(model, x, y, a: int, b: int, layers=None) -> dict:
    """Class comparison of every map layer of `model`: class `a` against class `b`.

    Parameters
    ----------
    model : keras.Model (e.g. `mnist_cnn.load_model(path)`)
    x : float32 (N, 28, 28, 1) model-ready images (`mnist_cnn.to_input`), y : (N,) labels
    a, b : the two classes
    layers : map layers (default every one, `mnist_cnn.describe(model).map_layers`)

    Returns
    -------
    {layer: `compare_maps` of the layer's maps on the images of a and of b}
    """
    from analysis.feature_maps import FeatureExtractor
    from mnist_cnn.network import describe

    layers = list(layers or [i.name for i in describe(model).map_layers])
    extract = FeatureExtractor(model, layers)
    y = np.asarray(y)
    maps_a, maps_b = extract(np.asarray(x)[y == a]), extract(np.asarray(x)[y == b])
    return {layer: compare_maps(maps_a[layer], maps_b[layer]) for layer in layers}


def probe_accuracy(maps_a, maps_b, top_k=(1, 2, 4, 8, 16), folds=5, seed=0) -> dict:
    """Cross-validated accuracy of a logistic-regression probe, class a vs class b.

    Parameters
    ----------
    maps_a, maps_b : (N_a, H, W, C), (N_b, H, W, C) activations of one layer.
    top_k : sequence of int
        Also fit probes on the spatial means of only the k best-ranked maps; the ranking is
        recomputed on each training fold (no peeking at the held-out fold).
    folds : int
        Stratified folds.
    seed : int
        Seed of the fold split.

    Returns
    -------
    dict with all_features (mean accuracy on every activation, H*W*C features),
    all_features_folds (per-fold accuracies), n_features, and top_k {k: accuracy}.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = np.asarray(maps_a, np.float32), np.asarray(maps_b, np.float32)
    x = np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)])
    y = np.r_[np.ones(len(a), int), np.zeros(len(b), int)]
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)

    def probe():
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))

    full = cross_val_score(probe(), x, y, cv=split)
    means = spatial_means(np.concatenate([a, b]))
    top = {}
    for k in top_k:
        correct = 0
        for train, test in split.split(means, y):
            order = rank_maps(means[train][y[train] == 1], means[train][y[train] == 0])[:k]
            model = probe().fit(means[train][:, order], y[train])
            correct += int((model.predict(means[test][:, order]) == y[test]).sum())
        top[int(k)] = round(correct / len(y), 4)
    return {"all_features": round(float(full.mean()), 4),
            "all_features_folds": [round(float(s), 4) for s in full],
            "n_features": int(x.shape[1]), "n_images": int(len(y)), "folds": folds,
            "top_k": top}


def zero_maps(maps: np.ndarray, indices) -> np.ndarray:
    """A copy of `maps` (N, H, W, C) with the channels `indices` set to zero (the ablation)."""
    ablated = np.array(maps, dtype=np.float32, copy=True)
    ablated[..., list(indices)] = 0.0
    return ablated


def ablation(head, maps_a, maps_b, label_a, label_b, ranking, ks=(1, 2, 4, 8, 16),
             random_draws=10, seed=0) -> dict:
    """Accuracy when the top-k ranked maps are zeroed, next to k random maps.

    Parameters
    ----------
    head : callable
        Maps (N, H, W, C) -> class probabilities (N, K), e.g. `mnist_cnn.model.head_model`.
    maps_a, maps_b : activations of the layer for the images of class a and class b.
    label_a, label_b : int, the true classes.
    ranking : int array, maps best first (from `rank_maps`).
    ks : sequence of int
    random_draws : int
        Random subsets of k maps per k (the same subsets for both classes).
    seed : int

    Returns
    -------
    dict with baseline {accuracy_a, accuracy_b, probability_a, probability_b} and rows, one per
    k: ranked_maps, ranked_<measure>, and random_<measure>_mean/_min/_max over the random
    draws, where <measure> is accuracy_a/_b (accuracy on the images of class a/b) or
    probability_a/_b (mean probability the model gives to their true class).
    """
    n_maps = np.asarray(maps_a).shape[-1]
    rng = np.random.default_rng(seed)

    def scores(indices):
        """(accuracy a, accuracy b, mean true-class probability a, b) with `indices` zeroed."""
        out = []
        for m, label in ((maps_a, label_a), (maps_b, label_b)):
            p = np.asarray(head(zero_maps(m, indices)))
            out.append((float((p.argmax(1) == label).mean()), float(p[:, label].mean())))
        return out[0][0], out[1][0], out[0][1], out[1][1]

    base = scores([])
    rows = []
    for k in ks:
        ranked = scores(ranking[:k])
        draws = np.array([scores(rng.choice(n_maps, size=k, replace=False))
                          for _ in range(random_draws)])
        row = {"k": int(k), "ranked_maps": [int(c) for c in ranking[:k]]}
        for col, name in enumerate(("accuracy_a", "accuracy_b", "probability_a", "probability_b")):
            row[f"ranked_{name}"] = round(ranked[col], 4)
            row[f"random_{name}_mean"] = round(float(draws[:, col].mean()), 4)
            row[f"random_{name}_min"] = round(float(draws[:, col].min()), 4)
            row[f"random_{name}_max"] = round(float(draws[:, col].max()), 4)
        rows.append(row)
    return {"baseline": {"accuracy_a": round(base[0], 4), "accuracy_b": round(base[1], 4),
                         "probability_a": round(base[2], 4), "probability_b": round(base[3], 4)},
            "random_draws": random_draws, "rows": rows}

