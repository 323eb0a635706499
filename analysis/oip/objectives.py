"""OIP objectives and penalties: what the gradient ascent climbs, and what it pays for.

Objectives are small functions of the target layer's output (N, ...) -> (N, C), one value per
batch item and map. The loop picks each item's own map with a one-hot mask (`select`);
`data_maximum` reads all C at once. An optional `revive` attribute says what to climb on the
pre-activation while the objective is zero (default: the objective itself).

Penalties are functions of the images (N, 28, 28) -> (N,) with a weight (`Penalty`, a small
named object as in tf-keras-vis); the loop subtracts each weighted penalty from the objective.
`penalties(tv, l2)` gives the two that `OIPConfig` names: total variation and L2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf


def map_mean(border: int = 0):
    """Mean of every map over its positions, `border` edge positions left out.

    Its `revive` (used while a map is zero everywhere) is the largest pre-activation in the
    same region: the map turns positive as soon as that one position does.
    """
    def crop(t):
        return t[:, border:-border, border:-border, :] if border else t

    def objective(t):
        return tf.reduce_mean(crop(t), axis=[1, 2])

    objective.revive = lambda t: tf.reduce_max(crop(t), axis=[1, 2])
    return objective


def map_position(row: int, col: int):
    """Every map's value at one position (row, col)."""
    def objective(t):
        return t[:, row, col, :]
    return objective


def unit():
    """Dense units (or output logits) as they are: a (N, C) output."""
    def objective(t):
        return t
    return objective


def select(values, onehot):
    """Each item's own map: values (N, C), one-hot targets (N, C) -> (N,)."""
    return tf.reduce_sum(values * onehot, axis=-1)


def default_objective(is_map: bool, border: int = 0):
    """`map_mean` for map layers (outputs (N, H, W, C)), `unit` for dense layers and logits."""
    return map_mean(border) if is_map else unit()


# ---------------------------------------------------------------------------------------------
# Penalties: images (N, 28, 28) -> (N,), weighted and subtracted from the objective.

def total_variation(images):
    """Mean absolute difference of neighbouring pixels, per image (N,)."""
    dy = tf.reduce_mean(tf.abs(images[:, 1:, :] - images[:, :-1, :]), axis=[1, 2])
    dx = tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2])
    return dx + dy


def mean_square(images):
    """Mean squared pixel value, per image (N,): the L2 penalty."""
    return tf.reduce_mean(tf.square(images), axis=[1, 2])


@dataclass(frozen=True)
class Penalty:
    """A named penalty on the images: the loop subtracts `weight * fn(images)` from its goal."""

    name: str
    weight: float
    fn: Callable

    def __call__(self, images):
        return self.weight * self.fn(images)


def penalties(tv: float = 0.0, l2: float = 0.0) -> list:
    """The total-variation and L2 penalties with these weights; those of weight 0 are left out.

    Returns
    -------
    list of Penalty, total variation first.
    """
    return [p for p in (Penalty("tv", tv, total_variation), Penalty("l2", l2, mean_square))
            if p.weight]
