"""One module per ``mnist-bench`` command, each with ``add_parser(sub)`` and ``run(args, out, err)``."""
