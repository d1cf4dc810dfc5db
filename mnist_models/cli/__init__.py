"""The ``mnist-bench`` command line: ``main.py`` (parser + dispatch), ``flags.py`` (flags generated
from RunConfig's field metadata), ``progress.py`` (stderr progress), one module per command in ``commands/``
(its flags and input checks, no torch) and what it does in ``actions/`` (imported when it runs). A new
command is a module in ``commands/`` (``ORDER``, ``add_parser``, ``run``), found by ``main.py``, and its
``actions/`` module."""
