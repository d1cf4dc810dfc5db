"""Reports: rows → frames → Markdown/CSV → files and README blocks, along ONE path (``publish.py``).

Renderers, each ``render(rows, env, run_id, heading) -> str``: ``seed_table.py`` (reproduce),
``speedup.py``, ``tta.py``, ``bench.py`` (the suite's summary). Helpers: ``markdown.py`` (tables,
formatting, the missing-value test), ``readme.py`` (marked blocks per machine kind). A new report
table is a renderer here, published through ``publish.publish``.
"""
