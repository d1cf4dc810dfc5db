"""One module per ``mnist-bench`` command, each with ``ORDER`` (its place in ``--help``),
``add_parser(sub)`` and ``run(args, out, err) -> exit code``; ``cli/main.py`` finds them here."""
