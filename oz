E1206 14:35:25.160000 2788 .venv/lib/python3.11/site-packages/torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 2) local_rank: 0 (pid: 2793) of binary: /work/main/.venv/bin/python
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<frozen runpy>", line 88, in _run_code
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1142, in <module>
    main()
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/elastic/multiprocessing/errors/__init__.py", line 380, in wrapper
    return f(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1138, in main
    run(args)
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1129, in run
    elastic_launch(
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 197, in __call__
    return launch_agent(
           ^^^^^^^^^^^^^
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 386, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError: 
============================================================
ranks.py FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-06_14:35:25
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : 2 (pid: 2794) 
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-06_14:35:25
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : 2 (pid: 2793) 
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
