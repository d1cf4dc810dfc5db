"""The history of every run, indexed in a database: trends and step changes across commits and machines.

- ``tables.py``: the index's tables (SQLAlchemy Core: an SQLite file under ``results/`` by default, or a
  PostgreSQL database many machines share), its schema version, and opening it;
- ``index.py``: what a results folder holds, indexed incrementally (a run folder already indexed and
  unchanged is not read again; ``runs.jsonl`` is read from where the last call stopped); ``push`` sends one
  run folder;
- ``trends.py``: each case's series per machine kind, one level per run, and its step changes
  (``measure.steps``);
- ``mlflow_export.py``: runs and sweep trials as MLflow runs (``mnist-bench export``; MLflow is an optional extra).

Subpackage ``__init__`` files import nothing, so the command line loads this only when it runs.
"""
