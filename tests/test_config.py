"""The TF-free facts: importing them costs no TensorFlow, and they agree with the built network
and with the Makefile."""

import re
import subprocess
import sys
from pathlib import Path

from mnist_cnn import config, series


def test_config_imports_no_tensorflow():
    probe = ("import sys, mnist_cnn.config, mnist_cnn.series, mnist_cnn.cli; "
             "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_layer_table_matches_the_built_network():
    from mnist_cnn.model import build_model

    model = build_model()
    assert [layer.name for layer in model.layers[1:]] == list(series.LAYER_NAMES)
    assert tuple(model.input.shape[1:]) == series.INPUT_SHAPE
    for name, size in series.LAYER_SIZES.items():
        assert model.get_layer(name).output.shape[-1] == size
    assert set(series.MAP_LAYERS) | set(series.CONV_LAYERS) <= set(series.TARGET_LAYERS)
    assert all(series.ACTIVATION_OF[name] in series.CONV_LAYERS + ("dense_1", "output")
               for name in series.TARGET_LAYERS)


def test_makefile_names_the_same_default_model():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    named = re.search(r"^DEFAULT_MODEL\s*:=\s*(\S+)", makefile, re.M).group(1)
    assert named == config.DEFAULT_MODEL
    assert config.DEFAULT_MODEL == config.TrainConfig().model_path == "models/mnist_cnn.keras"
