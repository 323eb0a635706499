"""Linear probes: can a measurement be read linearly from a layer? Scored on held-out images,
beside the same probe on the same architecture with random weights (random features decode a
lot: the control says how much of a score the training made).

The probes are closed-form ridge regressions with one fixed penalty (no search), all
measurements of a layer in one solve: the Gram matrix of the smaller side (images or
features) is factorised once. A loop count is read by a ridge classifier (least squares on the
one-hot count clipped to 0, 1, 2+, the largest output wins).
"""

from __future__ import annotations

import numpy as np

# The ridge penalty as a fraction of the Gram matrix's mean eigenvalue:
# scale-free, so the same for a 13x13x32 map and a 128-unit dense layer.
RIDGE = 0.01


def random_copy(model, seed: int = 0):
    """The same architecture with freshly initialised weights (`keras.models.clone_model`).

    Parameters
    ----------
    model : a Keras model; seed : the initialisation seed

    Returns
    -------
    keras.Model with the same layers and new random weights.
    """
    import keras

    keras.utils.set_random_seed(seed)
    clone = keras.models.clone_model(model)
    clone.build(model.inputs[0].shape)
    return clone


def _targets(values: dict, names) -> tuple:
    """Columns to regress: each non-count measurement, then the one-hot clipped loop count."""
    cols, index = [], {}
    for name in names:
        v = np.asarray(values[name], np.float64)
        if name == "loops":
            c = np.minimum(v, 2).astype(int)
            index[name] = list(range(len(cols), len(cols) + 3))
            cols += [(c == k).astype(np.float64) for k in range(3)]
        else:
            index[name] = [len(cols)]
            cols.append(v)
    return np.stack(cols, axis=1), index


def ridge_predict(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray,
                  ridge: float = RIDGE) -> np.ndarray:
    """Closed-form ridge regression on centred features (one common scale), every target column at once.

    Parameters
    ----------
    train_feats, test_feats : (n, d) and (m, d) features; train_y : (n, t) targets
    ridge : penalty as a fraction of the Gram matrix's mean eigenvalue

    Returns
    -------
    (m, t) predictions for the test features.
    """
    from scipy.linalg import solve

    a = np.asarray(train_feats, np.float32)   # the products in float32, the solve in float64
    b = np.asarray(test_feats, np.float32)
    mu = a.mean(axis=0)
    a, b = a - mu, b - mu
    # One scale for all features, not one per feature: a unit almost never active on the
    # training images would be blown up where it fires on a test image.
    scale = np.float32(np.sqrt((a * a).mean()) or 1.0)
    a, b = a / scale, b / scale
    y_mu = train_y.mean(axis=0)
    y = train_y - y_mu
    n, d = a.shape
    if d <= n:   # primal: (A'A + l I) w = A'y
        g = (a.T @ a).astype(np.float64)
        lam = ridge * np.trace(g) / d or ridge
        w = solve(g + lam * np.eye(d), a.T.astype(np.float64) @ y, assume_a="pos")
        return b.astype(np.float64) @ w + y_mu
    g = (a @ a.T).astype(np.float64)  # dual: (AA' + l I) c = y, w = A'c
    lam = ridge * np.trace(g) / n or ridge
    c = solve(g + lam * np.eye(n), y, assume_a="pos")
    return (b @ a.T).astype(np.float64) @ c + y_mu


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - ((y - pred) ** 2).sum() / total) if total > 0 else float("nan")


def probe_scores(train_feats: np.ndarray, train_values: dict, test_feats: np.ndarray,
                 test_values: dict, ridge: float = RIDGE) -> dict:
    """Held-out scores of one layer's probes for every measurement.

    Parameters
    ----------
    train_feats, test_feats : (n, d), (m, d) features
    train_values, test_values : measurement -> (n,) and (m,) values
    ridge : see `ridge_predict`

    Returns
    -------
    measurement -> score: R^2 (can be negative) for a measurement, accuracy over 0, 1, 2+ for
    the loop count (NaN when the training images hold fewer than two of those).
    """
    names = list(train_values)
    y, index = _targets(train_values, names)
    pred = ridge_predict(train_feats, y, test_feats, ridge)
    out = {}
    for name in names:
        cols = index[name]
        truth = np.asarray(test_values[name], np.float64)
        if name == "loops":
            if len(np.unique(np.minimum(train_values[name], 2))) < 2:
                out[name] = float("nan")
                continue
            out[name] = float((np.argmax(pred[:, cols], axis=1) == np.minimum(truth, 2)).mean())
        else:
            out[name] = _r2(pred[:, cols[0]], truth)
    return out


def probe_table(train_feats: dict, test_feats: dict, rand_train: dict, rand_test: dict,
                train_values: dict, test_values: dict) -> list:
    """Rows layer x measurement: trained score and random-weights score.

    Parameters
    ----------
    train_feats, test_feats : layer -> (n, d) features of the trained model
    rand_train, rand_test : the same for the random-weights copy
    train_values, test_values : measurement -> (n,) values

    Returns
    -------
    list of dicts: layer, concept, metric ("R2" or "accuracy"), trained, random.
    """
    rows = []
    for layer in train_feats:
        trained = probe_scores(train_feats[layer], train_values, test_feats[layer], test_values)
        rand = probe_scores(rand_train[layer], train_values, rand_test[layer], test_values)
        for name in train_values:
            rows.append({"layer": layer, "concept": name,
                         "metric": "accuracy" if name == "loops" else "R2",
                         "trained": trained[name], "random": rand[name]})
    return rows
