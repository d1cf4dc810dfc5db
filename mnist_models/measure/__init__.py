"""Measurement: ``timing.py`` (contention, pedantic rounds), ``stats.py`` (n, median, spread,
percentiles, the noisy flag), ``probes.py`` (matmul peak, peak memory, the roofline) and
``significance.py`` (is a change real?). The clocks themselves are ``host.clock``; what the machine is,
``host.capabilities``. A new measurement probe goes in ``probes.py``."""
