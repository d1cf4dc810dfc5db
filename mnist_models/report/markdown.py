"""Rendering helpers every report uses: the missing-value test, column formatting, Markdown tables
and the line naming the machine and run."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..host.kinds import machine_tag
from ..runs.frames import is_missing


def fmt_columns(frame: pd.DataFrame, formats: dict[str, str]) -> pd.DataFrame:
    """A copy with each named column (where present) formatted by ``str.format``; missing → ""."""
    out = frame.copy()
    for column, fmt in formats.items():
        if column in out:
            out[column] = out[column].map(lambda v, f=fmt: "" if is_missing(v) else f.format(v))
    return out


def pick_columns(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The named columns that the frame has, renamed for display (rows from older runs may lack some)."""
    present = [c for c in columns if c in frame]
    return frame[present].rename(columns=columns)


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table of a DataFrame (strings as they are, floats formatted)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if is_missing(value) else floatfmt.format(value)
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def machine_line(env: dict[str, Any], run_id: str) -> str:
    """``Machine: <tag>, torch <v>, <n> threads. Run `<id>`.``"""
    return f"Machine: {machine_tag(env)}, torch {env['torch']}, {env['torch_threads']} threads. Run `{run_id}`."
