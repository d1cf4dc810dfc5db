"""Rendering a ``compare.Comparison``: ``compare.md`` (Markdown), ``compare.html`` (one self-contained
page, no network: inline CSS, no scripts, its ``<section>`` reusable in a larger report) and the
JSON object ``mnist-bench compare --json`` prints (NaN → null)."""

from __future__ import annotations

import html
import math
from dataclasses import asdict
from typing import Any

import pandas as pd

from ...measure.between_runs import P_REAL
from ..markdown import markdown_table
from .verdicts import Comparison

GATE_LISTED = 10  # regressions named in the gate line; the tables' gate column has them all
TEST_NAMES = {"mann-whitney": "MWU", "range overlap": "range", "median±IQR overlap": "median±IQR"}
COMMON = {"model": "model", "device": "device", "variant": "variant"}
TAIL = {"verdict": "verdict", "img_s_base": "img/s BASE", "img_s_new": "img/s NEW", "time_change_pct": "Δ time",
        "test": "test"}
TRAIN_COLUMNS = {**COMMON, **TAIL, "acc_base": "acc % BASE", "acc_new": "acc % NEW", "accuracy": "accuracy",
                 "memory": "peak MiB", "compile": "compile s", "gate": "gate", "notes": "notes"}
INFERENCE_COLUMNS = {**COMMON, "batch_size": "batch", **TAIL, "memory": "peak MiB", "compile": "compile s",
                     "gate": "gate", "notes": "notes"}
CSS = """.mnist-compare{font:14px/1.4 system-ui,sans-serif;color:#222}
.mnist-compare table{border-collapse:collapse;margin:.5em 0 1.5em}
.mnist-compare th,.mnist-compare td{border:1px solid #ccc;padding:2px 6px;text-align:left}
.mnist-compare th{background:#f3f3f3}.mnist-compare .fail{color:#a00;font-weight:bold}
.mnist-compare tr.slower,.mnist-compare tr.failed{background:#fde8e8}
.mnist-compare tr.faster,.mnist-compare tr.fixed{background:#e6f6e6}
.mnist-compare tr.new,.mnist-compare tr.removed{background:#eef2fb}.mnist-compare tr.gate-fail td{font-weight:bold}"""


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return spec.format(value)


def _test_cell(row: dict[str, Any]) -> str:
    if "test" not in row:
        return ""
    if row["test"] == "between-run":
        return f"between runs (noise {row['noise_pct']:.1f}%, {row['noise_dof']} dof)"
    n = f"n {_fmt(row.get('n_base'), '{:.0f}')}/{_fmt(row.get('n_new'), '{:.0f}')}"
    p = f" p={row['p']:.2g}" if row.get("p") is not None else ""
    return f"{TEST_NAMES.get(row['test'], row['test'])}{p} ({n})"


def _pair(row: dict[str, Any], metric: str, spec: str) -> str:
    base, new = row.get(f"{metric}_base"), row.get(f"{metric}_new")
    if base is None or (math.isnan(base) and math.isnan(new)):
        return ""
    change = row.get(f"{metric}_change_pct")  # shown where it moved beyond the effect size and the floor
    moved = row.get(f"{metric}_moved") and change is not None and math.isfinite(change)
    return f"{_fmt(base, spec)} → {_fmt(new, spec)}" + (f" ({change:+.0f}%)" if moved else "")


def display_rows(comparison: Comparison, phase: str) -> list[dict[str, Any]]:
    """The rows of one phase as display strings (keys as in ``TRAIN_COLUMNS``), with ``_verdict`` and
    ``_fail`` kept for styling."""
    out = []
    for row in comparison.rows:
        if row["phase"] != phase:
            continue
        out.append({"model": row["model"], "device": row["device"], "variant": row["variant"],
                    "batch_size": str(row["batch_size"]), "verdict": row["verdict"],
                    "img_s_base": _fmt(row.get("img_s_base"), "{:,.0f}"),
                    "img_s_new": _fmt(row.get("img_s_new"), "{:,.0f}"),
                    "time_change_pct": _fmt(row.get("time_change_pct"), "{:+.1f}%"), "test": _test_cell(row),
                    "acc_base": _fmt(row.get("acc_base"), "{:.2f}"), "acc_new": _fmt(row.get("acc_new"), "{:.2f}"),
                    "accuracy": row.get("accuracy", ""), "memory": _pair(row, "memory", "{:,.0f}"),
                    "compile": _pair(row, "compile", "{:.2f}"),
                    "gate": "FAIL: " + "; ".join(row["regressions"]) if row["regressions"] else "",
                    "notes": "; ".join(row["notes"]), "_verdict": row["verdict"], "_fail": bool(row["regressions"])})
    return out


def _side(label: str, run: Any) -> str:
    m = run.machine
    what = m.get("machine_kind") or m.get("gpu") or m.get("cpu") or "machine unknown (no machine.json)"
    return (f"{label}: `{run.run_id}`: {what}, commit {m.get('git_commit') or '–'}, torch {m.get('torch') or '–'}, "
            f"profile `{m.get('profile') or '–'}`.")


def _sides(c: Comparison) -> list[tuple[str, Any, str]]:
    """(label, run folder, the verdict of a case only the other side has) of each side; one for A/A."""
    sides = [("BASE", c.base, "new"), ("NEW", c.new, "removed")]
    return sides[1:] if c.base.resolved == c.new.resolved else sides


def _warnings(c: Comparison) -> list[str]:
    b, n = c.base.machine, c.new.machine
    out = []
    if c.base.resolved == c.new.resolved:
        out.append("A/A: the same folder on both sides; every difference is zero by construction.")
    for key, what in (("machine_kind", "machine kinds"), ("profile", "profiles"), ("torch", "torch versions")):
        if b.get(key) and n.get(key) and b[key] != n[key]:
            out.append(f"Different {what} ({b[key]} → {n[key]}): the change includes that difference.")
    for label, run, absent in _sides(c):
        if run.incomplete is not None:
            out.append(f"{label} `{run.run_id}` is an incomplete run. {run.incomplete.detail()}; the cases it did not "
                       f"reach show as {absent}.")
        if run.problems:
            listed = "; ".join(f"`{p.say().replace('`', chr(39))}`" for p in run.problems)
            out.append(f"Problems in {label}'s files ({len(run.problems)}), each skipped or left out as said: "
                       f"{listed}.")
    return out


def warning_lines(c: Comparison) -> list[str]:
    """One line per problem in either folder's files (the file's full path and line) and per incomplete run,
    for stderr."""
    out = []
    for label, run, _ in _sides(c):
        out += [f"{label}: {p.say(run.resolved)}" for p in run.problems]
        out += [f"{label}: {run.resolved}: {run.incomplete.say()}"] if run.incomplete else []
    return out


def method_text(c: Comparison) -> str:
    """How the time verdicts were taken, with the thresholds used."""
    th = c.thresholds
    source = {"rounds.csv": "rounds.csv's raw per-round samples",
              "benchmark.json": "benchmark.json's per-round samples (pytest-benchmark's clock; no rounds.csv "
                                "on both sides)"}.get(c.source, "no raw samples on both sides")
    noise = (f"Each time change is judged against the case's run-to-run noise ({c.noise.source}, learned from "
             f"{c.noise.runs} runs of unchanged code on {c.noise.machine_kind}): real when it exceeds Student's t "
             f"at one-sided p {P_REAL:.1e} times its standard error (docs/compare.md). " if c.noise else
             "No run-to-run noise is known for this machine kind (`mnist-bench noise` learns it from repeated "
             "runs), so the rounds of each run are the samples, and they miss the run-to-run part: ")
    return (noise + f"Time is per image (s/round ÷ images per round), compared on {source}: two-sided Mann–Whitney U, "
            f"p < {th.p_threshold:g}, where both sides' n allow it (≥ 7 rounds each); with fewer rounds the "
            "[min, max] ranges must not overlap; without raw samples the median ± IQR intervals must not overlap. "
            f"A row is slower/faster only when the change is significant AND beyond {th.min_effect_pct:g}%. "
            f"Gate ({', '.join(th.gated) or 'nothing'}): time slower by more than {th.fail_above_pct:g}%, memory or "
            f"compile time up more than {th.fail_above_pct:g}%, training accuracy below BASE's eager band or more "
            f"than {th.acc_drop_pts:g} points below BASE, or a case that newly failed.")


def _case_name(row: dict[str, Any]) -> str:
    batch = f" batch {row['batch_size']}" if row["phase"] == "inference" else ""
    return f"{row['phase']} {row['model']} {row['device']} {row['variant']}{batch}"


def summary_lines(c: Comparison) -> list[str]:
    """Gate line, verdict counts and geometric means."""
    counts = ", ".join(f"{k} {v}" for k, v in c.counts.items())
    gated = ", ".join(c.thresholds.gated)
    if c.failed_gate:
        found = "; ".join(f"{_case_name(r)} ({', '.join(r['regressions'])})" for r in c.regressions[:GATE_LISTED])
        more = len(c.regressions) - GATE_LISTED
        found += f"; and {more} more (gate column)" if more > 0 else ""
        gate = f"**Gate: FAILED**: {len(c.regressions)} row(s) regressed in a gated metric ({gated}): {found}"
    else:
        gate = f"**Gate: passed**: no gated metric ({gated}) regressed."
    means = "; ".join(f"{g['device']} {g['phase']} {g['ratio']:.3f}× ({g['n']} cases)" for g in c.geomeans)
    return [gate, "", f"Verdicts: {counts}.", "",
            f"Geometric mean of throughput NEW ÷ BASE (> 1: NEW faster): {means or 'no case measured on both sides'}."]


def render_markdown(c: Comparison) -> str:
    """compare.md: the two runs, the gate, the counts, the method, and a table per phase."""
    lines = [f"# Compare `{c.base.run_id}` → `{c.new.run_id}`", "", _side("BASE", c.base), "", _side("NEW", c.new), ""]
    lines += [*(w + "\n" for w in _warnings(c)), *summary_lines(c), "", method_text(c), ""]
    for phase, title, columns in (("train", "Training", TRAIN_COLUMNS), ("inference", "Inference", INFERENCE_COLUMNS)):
        rows = display_rows(c, phase)
        if rows:
            frame = pd.DataFrame(rows)[list(columns)].rename(columns=columns)
            lines += [f"## {title}", "", markdown_table(frame), ""]
    return "\n".join(lines)


def _html_table(rows: list[dict[str, Any]], columns: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(v)}</th>" for v in columns.values())
    body = []
    for r in rows:
        cls = r["_verdict"] + (" gate-fail" if r["_fail"] else "")
        cells = "".join(f"<td{' class=fail' if k == 'gate' and r[k] else ''}>{html.escape(str(r[k]))}</td>"
                        for k in columns)
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_section(c: Comparison) -> str:
    """The comparison as one ``<section class="mnist-compare">`` (style included)."""
    paras = [_side("BASE", c.base), _side("NEW", c.new), *_warnings(c),
             *[line for line in summary_lines(c) if line], method_text(c)]
    parts = [f'<section class="mnist-compare"><style>{CSS}</style>',
             f"<h1>Compare {html.escape(c.base.run_id)} → {html.escape(c.new.run_id)}</h1>",
             *(f"<p>{html.escape(p.replace('**', '').replace('`', ''))}</p>" for p in paras)]
    for phase, title, columns in (("train", "Training", TRAIN_COLUMNS), ("inference", "Inference", INFERENCE_COLUMNS)):
        rows = display_rows(c, phase)
        if rows:
            parts += [f"<h2>{title}</h2>", _html_table(rows, columns)]
    return "\n".join([*parts, "</section>"])


def render_html(c: Comparison) -> str:
    """compare.html: a whole page around ``html_section`` (no scripts, no external resources)."""
    title = html.escape(f"Compare {c.base.run_id} → {c.new.run_id}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
            f"<body>\n{html_section(c)}\n</body></html>\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def as_json(c: Comparison) -> dict[str, Any]:
    """The comparison as one JSON-ready object (NaN → None)."""
    noise = {"source": c.noise.source, "runs": c.noise.runs, "machine_kind": c.noise.machine_kind} if c.noise else None
    return _clean({"base": str(c.base.resolved), "new": str(c.new.resolved), "samples": c.source, "noise": noise,
                   "thresholds": asdict(c.thresholds), "gate": "failed" if c.failed_gate else "passed",
                   "counts": c.counts, "regressions": [{k: r[k] for k in ("phase", "model", "device", "variant",
                                                                          "batch_size", "regressions")}
                                                       for r in c.regressions],
                   "geomean": c.geomeans, "rows": c.rows})
