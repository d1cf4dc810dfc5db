"""Results-page blocks (docs/results/<kind>.md, or any file with the markers): generated text between
``<!-- name:start -->`` / ``<!-- name:end -->`` markers, one sub-block per machine kind, so that figures
from other machines are kept."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..host.kinds import machine_tag
from ..results.provenance import environment
from ..results.store import write_text
from .markers import markers


def splice_marked(path: str | os.PathLike[str], name: str, body: str, kind: str | None = None) -> bool:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a file.

    With ``kind`` (a machine kind, see ``host.kinds.machine_kind``), only the sub-block
    ``<!-- name@kind:start -->`` … ``<!-- name@kind:end -->`` inside that block is replaced, or
    added at its end when this kind has none yet: figures from other machines stay as they are.
    Returns False (and changes nothing) when the outer markers are absent. Written atomically.
    """
    text = spliced(path, name, body, kind)
    if text is None:
        return False
    write_text(path, text)
    return True


def spliced(path: str | os.PathLike[str], name: str, body: str, kind: str | None = None) -> str | None:
    """The file's whole text after ``splice_marked`` (nothing written); None without the outer markers."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = markers(name)
    if start not in text or end not in text:
        return None
    head, rest = text.split(start, 1)
    inner, tail = rest.split(end, 1)
    if kind is None:
        inner = f"\n{body.strip()}\n"
    else:
        sub_start, sub_end = markers(f"{name}@{kind}")
        block = f"{sub_start}\n{body.strip()}\n{sub_end}"
        if sub_start in inner and sub_end in inner:
            before, after = inner.split(sub_start, 1)
            inner = before + block + after.split(sub_end, 1)[1]
        else:
            inner = inner.rstrip("\n") + f"\n\n{block}\n"
    return f"{head}{start}{inner}{end}{tail}"


def machine_block(path: str | os.PathLike[str], name: str, body: str, env: dict[str, Any] | None = None) -> str | None:
    """The file's whole text with ``body`` as this machine kind's sub-block of its ``name`` block (see
    ``splice_machine_block``; nothing written); None without the block's markers."""
    env = env or environment()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    demoted = "\n".join("#" + line if line.startswith("#") else line for line in body.strip().splitlines())
    titled = f"**{machine_tag(env)}** · kind `{env['machine_kind']}` · measured {stamp}\n\n{demoted}"
    return spliced(path, name, titled, kind=env["machine_kind"])


def splice_machine_block(path: str | os.PathLike[str], name: str, body: str, env: dict[str, Any] | None = None) -> bool:
    """Put ``body`` into ``path``'s ``name`` block as this machine kind's sub-block (see ``splice_marked``),
    under a line naming the machine, its kind and the date, so that every results-page figure says which
    machine it belongs to and figures from other machines are kept. The body's headings go one
    level down, under that line. Written atomically; False (nothing written) without the markers."""
    text = machine_block(path, name, body, env)
    if text is None:
        return False
    write_text(path, text)
    return True

