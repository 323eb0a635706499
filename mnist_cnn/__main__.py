"""`python -m mnist_cnn ...`: see mnist_cnn.cli."""

from mnist_cnn.cli import main

raise SystemExit(main())
