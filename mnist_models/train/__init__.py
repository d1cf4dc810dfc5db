"""Training: the run's choices resolved and the one training loop.

- ``runtime.py``: ``resolve`` (a run's automatic choices, made once at its entry, with the reason) and
  ``Runtime.from_config`` (device, precision, memory format, compile, CUDA graphs);
- ``auto.py``: ``--precision auto`` / channels_last auto, measured here (for ``resolve``);
- ``step.py``: the training step, the one place that calls ``backward()``;
- ``engine.py``: the loop with hooks, ``evaluate``, ``fit``, ``make_predictions``;
- ``checkpoint.py``: saved weights with their config; ``oom.py``: out of memory in one line.

The precision table, devices and the host allocator are ``host/`` (below this layer). Subpackage
``__init__`` files import nothing (except ``data`` and ``models``, which re-export their public names),
so importing one module never drags in its siblings.
"""
