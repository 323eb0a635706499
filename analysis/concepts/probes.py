"""Linear probes: can a measurement be read linearly from a layer? Scored on held-out images,
beside the same probe on the same architecture with random weights (random features decode a
lot: the control says how much of a score the training made)."""

from __future__ import annotations

import numpy as np


def random_copy(model, seed: int = 0):
    """The same architecture with freshly initialised weights (`keras.models.clone_model`)."""
    import keras

    keras.utils.set_random_seed(seed)
    clone = keras.models.clone_model(model)
    clone.build(model.inputs[0].shape)
    return clone


def probe_scores(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray,
                 test_y: np.ndarray, count: bool) -> float:
    """One probe's held-out score: R^2 of a ridge regression, or for a count (loops) the
    accuracy of a logistic regression on the count clipped to 0, 1, 2+.

    Parameters
    ----------
    train_feats, test_feats : (n, d) features; train_y, test_y : (n,) measurement
    count : True for loop counts (classification)

    Returns
    -------
    float: R^2 (can be negative) or accuracy.
    """
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_feats)
    a, b = scaler.transform(train_feats), scaler.transform(test_feats)
    if count:
        y_a, y_b = np.minimum(train_y, 2).astype(int), np.minimum(test_y, 2).astype(int)
        if len(np.unique(y_a)) < 2:
            return float("nan")
        clf = LogisticRegression(C=0.1, max_iter=300).fit(a, y_a)
        return float(clf.score(b, y_b))
    reg = RidgeCV(alphas=(1.0, 10.0, 100.0, 1000.0)).fit(a, train_y)
    return float(reg.score(b, test_y))


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
        for name in train_values:
            count = name == "loops"
            rows.append({"layer": layer, "concept": name, "metric": "accuracy" if count else "R2",
                         "trained": probe_scores(train_feats[layer], train_values[name],
                                                 test_feats[layer], test_values[name], count),
                         "random": probe_scores(rand_train[layer], train_values[name],
                                                rand_test[layer], test_values[name], count)})
    return rows
