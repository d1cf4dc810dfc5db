"""This machine and its devices: ``capabilities.py`` (CPU capability, ISA flags, native bf16, caches, the
machine kind), ``device.py`` (the ONE precision table, device resolution, autocast, synchronize),
``allocator.py`` (host malloc settings) and ``clock.py`` (the synchronising timer, the process's age,
interleaved timing). No training code; nothing here imports a layer above it.
"""
