"""Experiments: each turns cases (RunConfigs) into tidy rows.

- ``reproduce.py``: the seed notebook's table under its protocol; ``speedup.py``: the fast path
  against the notebook's way; ``tta.py`` + ``tta_worker.py``: time to accuracy, a process per seed;
- ``suite.py``: the benchmark suite's cases and rows; ``variants.py``: the named variants (a new
  variant goes here); ``plans.py`` + ``budget.py``: what a case may cut to keep the time budget.
"""
