"""Results: ``store.py`` (runs.jsonl, run folders, the latest link, atomic writes) and
``provenance.py`` (environment, git commit, run ids). Rendering is ``report/``'s job."""
