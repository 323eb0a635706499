"""mnist_cnn: the CNN of "A simple CNN for the MNIST dataset", trained and looked inside.

Importing the package is cheap: TensorFlow is imported only by the modules that need it,
so the command line can reject bad arguments instantly.
"""

__version__ = "0.1.0"
