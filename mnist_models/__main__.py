"""``python -m mnist_models`` runs the ``mnist-bench`` command line."""

import sys

from .cli import main

sys.exit(main())
