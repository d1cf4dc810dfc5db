"""One module per ``mnist-bench`` command, each with ``ORDER`` (its place in ``--help``),
``add_parser(sub)`` and ``run(args, out, err) -> exit code``; ``cli/main.py`` finds them here. A command
module checks its input and hands over to its action (``cli/actions/<name>.py``); it imports no torch and no
pandas, so ``--help`` and a bad flag answer in a fraction of a second."""
