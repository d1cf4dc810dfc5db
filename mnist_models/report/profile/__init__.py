"""The profile room's pages (``mnist-bench profile``): ``make_profile.py`` (profile a run and publish its
folder, the one function the command calls), ``profile_page.py`` (``summary.md``, ``ops.md``,
``breakdown.png`` and the lines printed) and ``profile_diff.py`` (``profile --diff``: ``diff.md``). The
profiled run is ``experiments/profiling.py``, the trace analysis ``measure/trace.py``, the folder's data
files ``runs/profiles.py``.
"""
