"""THE run-folder format, in one place: ``schema.py`` (what each file holds, its version), ``writer.py``
(the ONE writer: the suite's rows as its cases finish, then its tables, machine.json and ``latest``),
``files.py`` (reading a folder's files, complete or not, of any version), ``folder.py`` (THE reader:
``read_run`` → ``RunFolder``, what report and compare use), ``profiles.py`` (a profile folder's data),
``keys.py`` (case keys, environment keys) and ``frames.py`` (speed-ups and rounds computed from the
rows). Report, compare and every later feature read and write run folders only through here.
"""
