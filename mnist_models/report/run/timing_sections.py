"""The run report's Markdown, section by section: the machine, the models compared, training (per
model: accuracy, loss and time per variant, speed-up with accuracy delta and band flag), time per
round, training curves, inference (throughput, latency percentiles), memory and the roofline. The
prediction-quality sections and those from other files (time to accuracy, cuts, skips, a comparison,
a profile) are in ``other_sections.py``; ``run_page.py`` puts them in order.

Each section returns Markdown lines; a figure is drawn into ``plots`` (path → PNG bytes) and named in
the Markdown as ``![alt](plots/<name>.png)``, which the HTML page embeds. Tables reuse the suite's
own rendering (``report.suite_summary``: formats, flags, the ``auto`` cells) on the tables ``bench_frames``
recomputed, so the report and ``summary.md`` read the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ...host.kinds import machine_tag
from ...runs.files import CASES_FILE
from ...runs.folder import RunFolder
from ...runs.frames import is_missing
from ...variants import BASELINE
from .. import plots, suite_summary
from ..markdown import markdown_table

PLOTS = "plots"
READS = ("train.csv", "inference.csv", "rounds.csv", "tta.csv", "confusion.csv", "predictions.csv", "machine.json",
         "compare.md", CASES_FILE)  # what the report is made from (named in its first lines, where the run has them)
REFERENCE_BATCH = 256  # the inference batch the comparisons use (the results page's), else the largest run
NOT_RECORDED = "not recorded"
TRAIN_REPORT = {"variant": "variant", "test_acc_pct": "test acc %", "test_loss": "test loss",
                "acc_delta_vs_eager_pct": "Δacc vs eager (pts)", "n": "n", "median_s": "s/round median",
                "iqr_s": "IQR s", "round_mean_ci": "s/round mean ± std (95% CI)", "img_per_s": "img/s",
                "speedup_vs_eager": "speed-up vs eager",
                "compile_s": "compile s", "noisy": "flag"}
INFERENCE_REPORT = {"variant": "variant", "batch_size": "batch", "n": "n", "img_per_s": "img/s",
                    "p50_ms": "p50 ms", "p90_ms": "p90 ms", "p99_ms": "p99 ms", "speedup_vs_eager": "speed-up vs eager",
                    "agree_with_eager_pct": "same class as eager %", "noisy": "flag"}


def figure(store: dict[str, bytes], name: str, data: bytes | None, alt: str) -> list[str]:
    """Keep a drawn figure and name it in the Markdown (nothing when there was nothing to draw)."""
    if data is None:
        return []
    path = f"{PLOTS}/{name}.png"
    store[path] = data
    return [f"![{alt}]({path})", ""]


def reference_batch(inference: pd.DataFrame) -> int | None:
    """256 where the run measured it, else its largest inference batch (None without inference)."""
    if inference.empty:
        return None
    sizes = set(plots.numeric(inference, "batch_size").dropna().astype(int))
    return REFERENCE_BATCH if REFERENCE_BATCH in sizes else max(sizes, default=None)


def _value(value: Any) -> str:
    return NOT_RECORDED if is_missing(value) or value == "" else str(value)


def _peaks(machine: dict[str, Any]) -> str:
    peaks, sizes = machine.get("matmul_peak_gflop_per_s") or {}, machine.get("matmul_peak_size") or {}
    return ", ".join(f"{k} {v:,.1f} GFLOP/s" + (f" ({sizes[k]}² matmul)" if k in sizes else "")
                     for k, v in peaks.items()) or NOT_RECORDED


def _budget(machine: dict[str, Any]) -> str:
    if "session_s" not in machine:
        return NOT_RECORDED + (" (the run predates the time budget)" if machine else " (no machine.json)")
    budget = f"{machine['budget_s']:.0f} s" if machine.get("budget_s") else "none"
    warm = machine.get("inductor_warmup_s")
    inductor = f"; first torch.compile {warm:.1f} s, before the cases" if warm is not None else ""
    return f"budget {budget}; session {machine['session_s']:.0f} s from process start{inductor}"


def machine_section(run: RunFolder) -> list[str]:
    """What the run ran on: machine.json, completed from the rows (older runs lack fields)."""
    env, machine = run.env, run.machine
    bf16 = env.get("bf16_native")
    cache = machine.get("cache_kib") or {}
    gpu = f"{env['gpu']} (CUDA capability {_value(env.get('gpu_capability'))})" if env.get("gpu") else "none"
    rows = [
        ("machine", machine_tag(env)), ("machine kind", _value(env.get("machine_kind"))),
        ("CPU", f"{env['cpu']}, {env['cpu_count']} cores"), ("dispatch level", _value(env.get("cpu_capability"))),
        ("ISA flags", _value(env.get("cpu_isa"))),
        ("bf16", NOT_RECORDED if bf16 is None else ("native" if str(bf16) == "True" else "emulated")),
        ("oneDNN ISA limit", env.get("onednn_max_isa") or ("none" if "cpu_isa" in env else NOT_RECORDED)),
        ("caches", ", ".join(f"{k} {v:,} KiB" for k, v in cache.items()) or NOT_RECORDED), ("GPU", gpu),
        ("torch", f"{env['torch']}, {env['torch_threads']} threads"),
        ("torchvision / torchmetrics", f"{_value(env.get('torchvision'))} / {_value(env.get('torchmetrics'))}"),
        ("CUDA / cuDNN", f"{env.get('cuda') or '–'} / {env.get('cudnn') or '–'}"),
        ("Python, platform", f"{_value(env.get('python'))}, {_value(env.get('platform'))}"),
        ("host allocator", _value(env.get("host_allocator"))), ("git commit", _value(env.get("git_commit"))),
        ("matmul peaks (measured)", _peaks(machine)), ("time budget", _budget(machine)),
    ]
    return ["## Machine", "", markdown_table(pd.DataFrame(rows, columns=["", "value"])), ""]


def title_section(run: RunFolder) -> list[str]:
    machine = run.machine
    facts = [f"profile `{machine.get('profile') or _first(run, 'profile')}`", f"data set {run.dataset}",
             f"{len(run.train)} training and {len(run.inference)} inference cases",
             "models " + ", ".join(dict.fromkeys([*run.train.get("model", []), *run.inference.get("model", [])])),
             "devices " + ", ".join(dict.fromkeys([*run.train.get("device", []), *run.inference.get("device", [])]))]
    return [f"# Benchmark run `{run.run_id}`", "", *problem_lines(run),
            f"{machine_tag(run.env)}: " + "; ".join(facts) + ".", "",
            "Made by `mnist-bench report` from this folder's " + ", ".join(f"`{f}`" for f in READS if f in run.files) +
            (". `summary.md` has every table in full" if "summary.md" in run.files else "") +
            "; the columns are described in `results/README.md`. Times: "
            "`benchmark.pedantic`, warm-up rounds excluded, the device synchronised at the end of every round; "
            "median over n rounds with the IQR (p75 − p25).", ""]


def problem_lines(run: RunFolder) -> list[str]:
    """The incomplete-run banner and the problems found in the folder's files (file and line, and what
    was skipped or left out), before anything else."""
    lines = []
    if run.incomplete is not None:
        lines += [f"> **Incomplete run.** {run.incomplete.detail()}. `mnist-bench report` read what it finished.",
                  ""]
    if run.problems:
        lines += [f"**Problems in this folder's files ({len(run.problems)}):** each was skipped or left out as "
                  "said; the report is made from the rest.", "",
                  *(f"- `{p.say().replace('`', chr(39))}`" for p in run.problems), ""]
    return lines


def _first(run: RunFolder, column: str) -> str:
    for frame in (run.train, run.inference):
        if column in frame and not frame.empty:
            return str(frame[column].iloc[0])
    return NOT_RECORDED


def models_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    batch = reference_batch(run.inference)
    data = plots.model_comparison(run.train, run.inference, batch)
    if data is None:
        return []
    return ["## Models compared (eager)", "",
            "Eager fp32 of each model: test accuracy after the timed training rounds, training throughput"
            + (f" and inference throughput at batch {batch}" if batch else "") + ".", "",
            *figure(store, "models", data, "Models compared: test accuracy and images/s, eager")]


def _model_tables(frame: pd.DataFrame, env: dict[str, Any], formats: dict[str, str], columns: dict[str, str],
                  suffix: str, note: Callable[[pd.DataFrame], str] | None = None) -> list[str]:
    """One ``suite_summary.table`` per (model, device) of ``frame``, titled ``### model · device<suffix>``, with
    an optional line under it."""
    lines: list[str] = []
    for (model, device), rows in plots.cases(frame):
        lines += [f"### {model} · {device}{suffix}", "", suite_summary.table(rows, env, formats, columns), ""]
        lines += [note(rows), ""] if note else []
    return lines


def _band_line(rows: pd.DataFrame) -> str:
    eager = rows[rows["variant"] == BASELINE]
    if eager.empty or "band_min_acc_pct" not in eager or is_missing(eager["band_min_acc_pct"].iloc[0]):
        return "No accuracy band was recorded for this model (runs before the band existed): no band flags."
    first = eager.iloc[0]
    stats = ""
    if not is_missing(first.get("band_std_acc_pct")):  # recorded since issue 18
        stats = (f", mean {first['band_mean_acc_pct']:.2f} ± {first['band_std_acc_pct']:.2f}% (sample std; 95% CI "
                 f"{first['band_ci_low_acc_pct']:.2f}–{first['band_ci_high_acc_pct']:.2f}%, Student's t)")
    return (f"Eager fp32's accuracy over {int(first['band_n'])} seeds: {first['band_min_acc_pct']:.2f}–"
            f"{first['band_max_acc_pct']:.2f}%{stats}; a variant outside the range is flagged, and `compare` "
            "gates on the 95% prediction interval of one more seed.")


def training_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    if run.train.empty:
        return ["## Training", "", "This run has no training cases.", ""]
    lines = ["## Training", "",
             "Seed-protocol hyper-parameters (batch 32, plain SGD), the same seed and steps for every variant; "
             "test accuracy and loss after the timed rounds. Speed-up = this variant's img/s ÷ eager's; Δacc = "
             "its test accuracy − eager's (a case the budget cut is compared with eager retrained to its steps).",
             "", *figure(store, "speedup", plots.speedups(run.train), "Training speed-up per variant"),
             "Per model: accuracy, loss and time of each variant.", ""]
    return lines + _model_tables(run.train.assign(round_mean_ci=[_mean_ci_cell(r) for _, r in run.train.iterrows()]),
                                 run.env, suite_summary.TRAIN_FORMATS, TRAIN_REPORT, "", _band_line)


def _mean_ci_cell(row: pd.Series) -> str:
    """A case's mean round time ± sample std (Student's t 95% interval), where the run recorded them."""
    if is_missing(row.get("std_s")):
        return NOT_RECORDED if "std_s" not in row else "–"
    return f"{row['mean_s']:.3f} ± {row['std_s']:.3f} ({row['ci_low_s']:.3f}–{row['ci_high_s']:.3f})"


def rounds_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    if run.train.empty:
        return []
    per_round = run.rounds is not None and not run.rounds.empty
    source = ("every timed round from `rounds.csv`" if per_round else
              "this run has no `rounds.csv` (written before per-round times were kept): the median with the "
              "fastest and slowest round (`min_s`, `max_s` of train.csv)")
    return ["## Time per round", "", f"Seconds per timed training round: {source}. The IQR is in the tables "
            "above; a case the budget cut runs fewer steps per round (shown beside its name).", "",
            *figure(store, "round_times", plots.round_times(run.train, run.rounds if per_round else None),
                    "Time per training round")]


def curves_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    if run.train.empty:
        return []
    drawn = figure(store, "training_curves", plots.training_curves(run.train, run.rounds), "Training curves")
    if not drawn:
        return ["## Training curves", "", "This run has no per-round data (no `rounds.csv` with `train_loss`: "
                "the version that wrote it did not keep them), so there are no training curves; the loss of the "
                "last timed round of each case is `train_loss` in `train.csv`.", ""]
    return ["## Training curves", "", "Mean training loss of each timed round, per variant, against the steps "
            "trained so far (the untimed warm-up round comes first and is counted, not drawn). The quick "
            "profile times a few short rounds, so each curve is a few points of one run's start.", "", *drawn]


def inference_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    if run.inference.empty:
        return ["## Inference", "", "This run has no inference cases.", ""]
    lines = ["## Inference", "",
             "One forward pass per round under `torch.inference_mode()` on real test images; latency percentiles "
             "of one batch over the n rounds; \"same class as eager\": the share of test images whose predicted "
             "class equals eager fp32's.", "",
             *figure(store, "throughput", plots.throughput(run.inference), "Inference throughput vs batch size"),
             "### Latency percentiles", "",
             *figure(store, "latency", plots.latency(run.inference), "Inference latency percentiles")]
    return lines + _model_tables(run.inference, run.env, suite_summary.INFERENCE_FORMATS, INFERENCE_REPORT,
                                 ": inference")


def memory_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    drawn = figure(store, "memory", plots.memory(run.train, run.inference, reference_batch(run.inference)),
                   "Peak memory per case")
    if not drawn:
        return []
    return ["## Memory", "", "Each case's peak in a pass of its own: CUDA max allocated on a GPU; on the CPU the "
            "whole process's peak resident set (data, model and libraries included; `peak_rss_growth_mib` in "
            "the CSVs is the growth over the resident set before the pass).", "", *drawn]


def roofline_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    drawn = figure(store, "roofline", plots.roofline(run.train, run.inference, reference_batch(run.inference)),
                   "Roofline: share of the measured matmul peak")
    if not drawn:
        return []
    return ["## Roofline", "", "Achieved GFLOP/s (FLOPs per image counted with `torch.utils.flop_counter`) as a "
            f"share of the device's measured matmul peak in the case's precision: {_peaks(run.machine)}. It can "
            "pass 100% where a precision's matmul runs slower than its convolutions (bf16 emulated).", "", *drawn]
