"""Experiments: each turns cases (RunConfigs) into tidy rows.

- ``reproduction.py``: the seed notebook's table under its protocol; ``fast_path.py``: the fast path
  against the notebook's way; ``time_to_accuracy.py`` + ``tta_worker.py``: time to accuracy, a process
  per seed;
- ``suite.py``: the benchmark suite's cases and rows (the variants are ``mnist_models.variants``);
  ``plans.py`` + ``budget.py``: what a case may cut to keep the time budget; ``quality.py``: what a
  suite run's weights predict.
"""
