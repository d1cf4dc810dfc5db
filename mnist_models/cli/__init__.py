"""The ``mnist-bench`` command line: ``main.py`` (parser + dispatch), ``flags.py`` (flags generated
from RunConfig's field metadata), ``progress.py`` (stderr progress), and one module per command in
``commands/``. A new command is a module in ``commands/`` (``ORDER``, ``add_parser``, ``run``), found by ``main.py``."""
