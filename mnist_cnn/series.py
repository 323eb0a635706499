"""The series' network as a table, with no TensorFlow: its layer names and output shapes, the
layers an analysis can target, its parameter count, and the Keras model name per data set.

`mnist_cnn.model.build_model` builds exactly this network (tests/test_config.py checks it), and
`mnist_cnn.network.series_table` is what `peek` says for it before it is trained. The command
line reads it to name the series' layers in its help; the analyses describe the model they are
given (`mnist_cnn.network.describe`) and read this table only for the series' defaults:
`analysis.feature_maps.FEATURE_LAYERS` and the NumPy reference experiment
(`analysis.experiments.reference`), which compares this network only.
"""

from __future__ import annotations

# Keras model names: the .keras file records which data set its model was trained on (the name
# survives a copy; metrics.json beside it records it too). MNIST keeps the name every model had
# before Fashion-MNIST was added, so existing models stay valid.
MODEL_NAMES = {"mnist": "mnist_cnn", "fashion": "mnist_cnn_fashion"}

INPUT_SHAPE = (28, 28, 1)
LAYER_NAMES = ("conv_1", "pool_1", "conv_2", "pool_2", "conv_3", "flatten", "dense_1", "output")
OUTPUT_SHAPES = {"conv_1": (26, 26, 32), "pool_1": (13, 13, 32), "conv_2": (11, 11, 64),
                 "pool_2": (5, 5, 64), "conv_3": (3, 3, 128), "flatten": (1152,),
                 "dense_1": (70,), "output": (10,)}
CONV_LAYERS = ("conv_1", "conv_2", "conv_3")
MAP_LAYERS = ("conv_1", "pool_1", "conv_2", "pool_2", "conv_3")  # layers that produce maps
PARAM_COUNT = 174_092

# Layers an analysis can target (OIPs), and the layer whose activation function each one ends
# with (a max-pool of ReLUs is the ReLU of the max-pool of the pre-activations).
ACTIVATION_OF = {"conv_1": "conv_1", "pool_1": "conv_1", "conv_2": "conv_2", "pool_2": "conv_2",
                 "conv_3": "conv_3", "dense_1": "dense_1", "output": "output"}
TARGET_LAYERS = tuple(ACTIVATION_OF)
# Maps (channels) or units of every target layer.
LAYER_SIZES = {name: OUTPUT_SHAPES[name][-1] for name in TARGET_LAYERS}
