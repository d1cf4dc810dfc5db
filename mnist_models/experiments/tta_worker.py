"""One time-to-accuracy seed in a fresh process: ``python -m mnist_models.experiments.tta_worker '<RunConfig JSON>'``.

Prints the seed's row as one JSON line. Its clock starts at process start, so it imports nothing
heavy before ``time_to_accuracy.run_one`` times the torch import (tests/test_imports.py holds it to that: no
pandas, matplotlib or rich in this process).
"""

from __future__ import annotations

import json
import sys

from .time_to_accuracy import run_one


def main(argv: list[str]) -> int:
    row = run_one(json.loads(argv[0]))
    print(json.dumps(row, allow_nan=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
