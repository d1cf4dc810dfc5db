"""Training: the device policy and the one training loop.

- ``device.py``: the ONE precision table, device resolution, autocast, synchronize;
- ``runtime.py``: ``Runtime.from_config`` (device, precision, memory format, compile, CUDA graphs);
- ``auto.py``: ``--precision auto`` / channels_last auto, resolved by measuring here;
- ``allocator.py``: the host malloc settings a training process runs under;
- ``step.py``: the training step, the one place that calls ``backward()``;
- ``engine.py``: the loop with hooks, ``evaluate``, ``fit``, ``make_predictions``.

Subpackage ``__init__`` files import nothing (except ``data`` and ``models``, which re-export their
public names), so importing one module never drags in its siblings.
"""
