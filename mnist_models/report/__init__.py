"""Reports: what users read, rendered from data files, along ONE publish path (``publish.py``).

Rooms: ``run/`` (the report of one run folder), ``compare/`` (run vs run, the regression gate); the
tables of the commands, each ``render(rows, env, run_id, heading) -> str``: ``notebook_table.py``
(reproduce), ``speedup_table.py``, ``tta_table.py``, ``suite_summary.py`` (the suite's summary.md).
Shared rendering below them: ``markdown.py`` (tables, formatting), ``html.py`` (one self-contained
page), ``plots.py`` (matplotlib figures), ``readme.py`` (marked blocks per machine kind). A new report
table is a renderer here, published through ``publish.publish``.
"""
