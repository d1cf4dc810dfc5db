"""``python -m mnist_models`` runs the ``mnist-bench`` command line."""

import sys

from .cli.main import main

sys.exit(main())
