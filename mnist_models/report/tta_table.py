"""Time to accuracy over the seeds (``mnist-bench tta`` and the suite's case): MLPerf-style
``figures`` (olympic mean, median, min and max of each clock; the failures; the start-up phases),
``summarize`` (the figures as a table) and ``render``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..experiments.time_to_accuracy import STARTUP_PHASES, olympic_mean
from .markdown import fmt_columns, machine_line, markdown_table

CLOCKS = {"from_start_s": "from process start", "from_first_step_s": "from the first step"}


def figures(rows: pd.DataFrame) -> dict[str, Any]:
    """MLPerf-style figures over the seeds that reached the target, the failures, and the median of
    each start-up phase over all seeds (``startup``, where the rows have them)."""
    ok = rows[rows["reached"]]
    out: dict[str, Any] = {"n_seeds": len(rows), "n_reached": len(ok),
                           "failed_seeds": [int(s) for s in rows.loc[~rows["reached"], "seed"]]}
    for clock in ("from_start_s", "from_first_step_s"):
        values = list(ok[clock])
        out[clock] = {"olympic_mean": olympic_mean(values),
                      "median": float(pd.Series(values).median()) if values else float("nan"),
                      "min": min(values, default=float("nan")), "max": max(values, default=float("nan"))}
    out["startup"] = {phase: float(rows[phase].median()) for phase in STARTUP_PHASES if phase in rows}
    return out


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per clock: olympic mean, median, min and max seconds over the seeds that reached the target."""
    found = figures(rows)
    return pd.DataFrame([{"clock": label, **{k.replace("_", " "): v for k, v in found[clock].items()}}
                         for clock, label in CLOCKS.items()])


def _precision_text(first: Any) -> str:
    """How the precision and memory format were chosen (rows from before auto existed say nothing)."""
    requested = first.get("precision_requested")
    reason = first.get("auto_reason")
    if not isinstance(reason, str) or not reason:
        return ""
    return (f"Precision {requested} and memory format resolved once before the seeds, by measuring "
            f"(in {first['auto_probe_s']:.2f} s, outside the seeds' clocks): {reason}.")


def render(rows: pd.DataFrame, env: dict[str, Any], run_id: str, heading: str = "###") -> str:
    """The Markdown report: the MLPerf-style summary, one row per seed, where start-up goes, and how
    it was measured (``heading``: the Markdown level of its title)."""
    summary = figures(rows)
    first = rows.iloc[0]
    table = summarize(rows)
    table = fmt_columns(table, {column: "{:.2f}" for column in table.columns if column != "clock"})
    per_seed = rows[["seed", "reached", "from_start_s", "from_first_step_s", "steps", "epochs", "evaluations",
                     "test_acc_pct"]].copy()
    per_seed = fmt_columns(per_seed, dict.fromkeys(("from_start_s", "from_first_step_s", "epochs", "test_acc_pct"),
                                                   "{:.2f}"))
    failed = ", ".join(str(s) for s in summary["failed_seeds"]) or "none"
    startup = summary.get("startup") or {}
    startup_lines = []
    if startup:
        parts = ", ".join(f"{STARTUP_PHASES[k]} {v:.2f} s" for k, v in startup.items())
        startup_lines = [f"Start-up, median over the seeds: {parts} (total {sum(startup.values()):.2f} s to the "
                         "first step).", ""]
    if "cli_help_s" in first and first["cli_help_s"] == first["cli_help_s"]:  # NaN in rows from before it
        startup_lines += [f"The command line's own start-up, `mnist-bench --help` in a fresh process: "
                          f"{first['cli_help_s']:.2f} s (median of {int(first['cli_help_n'])}, min "
                          f"{first['cli_help_min_s']:.2f}, max {first['cli_help_max_s']:.2f}; no torch imported).", ""]
    precision = f"{first['precision']}, auto" if first.get("precision_requested") == "auto" else first["precision"]
    auto = _precision_text(first)
    return "\n".join([
        f"{heading} Time to {first['target_pct']:g}% test accuracy ({first['model']}, {first['device']}, "
        f"{precision})", "",
        f"{summary['n_reached']} of {summary['n_seeds']} seeds reached the target; failed seeds: {failed}. "
        "Seconds over the seeds that reached it:", "",
        markdown_table(table), "", markdown_table(per_seed), "", *startup_lines,
        *([auto, ""] if auto else []),
        machine_line(env, run_id), "",
        f"Each seed runs in its own process. Recipe: batch {first['batch_size']:g}, Adam (fused) with a one-cycle "
        f"schedule (peak lr {first['max_lr']:g}) over a {first['max_epochs']}-epoch budget, label smoothing "
        f"{first['label_smoothing']:g}, the fast loader, channels_last {first['channels_last']}; the full test "
        f"set is evaluated every {first['eval_every']} steps from {first['eval_from']:.0%} of the budget on "
        "and at its end (evaluation time counted). From start: since the process started (interpreter, "
        "torch import, data verification, model build included). Olympic mean: the fastest and slowest "
        "seed dropped.",
    ])
