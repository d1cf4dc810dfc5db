"""Run-vs-run comparison (``mnist-bench compare``): ``verdicts.py`` (join two run folders, a verdict per
case, the gate) and ``compare_page.py`` (``compare.md``, ``compare.html`` and the JSON).
"""
