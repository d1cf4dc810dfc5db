"""Measurement: ``timing.py`` (Timer, steady calls, process age, contention, pedantic rounds),
``stats.py`` (n, median, spread, percentiles, the noisy flag), ``probes.py`` (matmul peak, peak
memory, interleaved step timing) and ``machine.py`` (what this machine can do: ISA, native bf16,
caches, its kind). A new measurement probe goes in ``probes.py``."""
