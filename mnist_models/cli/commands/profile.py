"""``mnist-bench profile [--model v2] [--variant eager] [--wait 1 --warmup 3 --active 5]``: a short
training run under ``torch.profiler``, apart from any timed run, into ``results/profiles/<id>/``
(id = UTC timestamp + model + variant): ``trace.json.gz`` (Perfetto, chrome://tracing),
``tensorboard/*.pt.trace.json``, ``ops.md``/``ops.csv``, ``stacks.txt``, ``breakdown.csv``/``.png``,
``summary.md`` and ``profile.json``.

``mnist-bench profile --diff A B``: the operator-level diff of two such folders (their ``ops.csv``),
printed and written as ``B/diff.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from ...config import RunConfig
from ...experiments.suite import base_config
from ...host.device import resolve_device
from ...measure import profile_report as pr
from ...measure.profile import (
    Schedule,
    chrome_trace_gz,
    folded_stacks,
    op_rows,
    overhead,
    prepare_training,
    profile_training,
)
from ...report.publish import write_files
from ...results.provenance import environment, machine_tag
from ...results.store import DiskFullError, to_json
from ...train.runtime import Runtime
from ...variants import Variant, get_variant, list_variants
from ..common import prepare_run
from ..flags import UsageError, add_config_flags, add_json, config_values, float_arg, int_arg

SETTINGS = ("model", "device", "precision", "compile", "channels_last", "loader", "batch_size", "data_root")
DEFAULTS = {"model": "v2", "batch_size": 32, "precision": None, "compile": None, "loader": None}  # None: the variant's
TOP_OPS = 30  # rows of ops.md (ops.csv has them all)

ORDER = 90  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="a short training run under torch.profiler: trace (Perfetto, TensorBoard), "
                                       "operator table, flame-graph stacks, step-time breakdown, profiler overhead")
    add_config_flags(p, SETTINGS, defaults=DEFAULTS, notes={
        "precision": "default: the variant's (fp32 for eager)", "compile": "default: the variant's (none for eager)",
        "loader": "default: the variant's (fast; seed for notebook-loader)",
        "channels_last": "here the variant's (NCHW for eager)"})
    p.add_argument("--variant", default="eager", metavar="NAME",
                   help=f"a benchmark variant applied to the suite's baseline, before the flags above: "
                        f"{', '.join(list_variants())}; default eager")
    for name, default, what in (("wait", 1, "steps run before the profiler starts"),
                                ("warmup", 3, "steps traced but dropped (the profiler's start-up)"),
                                ("active", 5, "steps recorded; also the steps timed without the profiler, "
                                              "before and after")):
        p.add_argument(f"--{name}", type=int_arg, default=default, metavar="N", help=f"{what}; default {default}")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="results folder; the profile goes to DIR/profiles/<id>/ (default: results)")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"),
                   help="instead of profiling: compare two profile folders' operators, write B/diff.md")
    p.add_argument("--min-change", type=float_arg, default=10.0, metavar="PCT",
                   help="--diff: list an operator as slower/faster from this change in percent; default 10")
    p.add_argument("--min-us", type=float_arg, default=10.0, metavar="US",
                   help="--diff: … and from this change in µs per step; default 10")
    p.add_argument("--by", choices=("shape", "op"), default="shape",
                   help="--diff: match operators with their input shapes (shape) or by name alone (op); "
                        "default shape")
    add_json(p)


def config(args: argparse.Namespace) -> tuple[RunConfig, Variant]:
    """The suite's baseline for the model on the device, the variant's changes, then the flags given."""
    try:
        variant = get_variant(args.variant)
    except KeyError as exc:
        raise UsageError(f"{exc.args[0]}; fix: --variant NAME with one of those") from None
    given = {k: v for k, v in config_values(args, SETTINGS).items() if v is not None}
    base = base_config(given.pop("model", DEFAULTS["model"]), given.pop("device", "auto"),
                       given.pop("data_root", None))
    cfg = variant.apply(base).with_(**given)
    reason = variant.skip_reason(resolve_device(cfg.device).type, "train")  # the variant's reason before the flag's
    if reason:
        raise UsageError(f"--variant {variant.name}: {reason}; fix: pick another variant (see --help)")
    Runtime.check(cfg)
    return cfg, variant


def new_profile_folder(results: Path, model: str, variant: str) -> tuple[str, Path]:
    """``results/profiles/<UTC timestamp>-<model>-<variant>/``, created new (``-2``, ``-3``… when
    a profile started in the same second)."""
    stem = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{model}-{variant}".replace("+", "-")
    for n in range(1, 100):
        run_id = stem if n == 1 else f"{stem}-{n}"
        folder = results / "profiles" / run_id
        try:
            folder.mkdir(parents=True)
            return run_id, folder
        except FileExistsError:
            continue
    raise UsageError(f"{results / 'profiles'} already holds 99 profiles named {stem}*; fix: wait a second")


@contextlib.contextmanager
def removed_on_failure(folder: Path) -> Iterator[Path]:
    """The new profile folder, removed with what it holds when the profile fails (a full disk, Ctrl-C):
    no half profile is left for ``--diff`` to trip over. Nothing else is ever removed."""
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def view_lines(folder: Path) -> list[str]:
    """How to open the artefacts."""
    return [f"Perfetto: open {folder / 'trace.json.gz'} at https://ui.perfetto.dev (or chrome://tracing)",
            f"TensorBoard: pip install .[profile], then tensorboard --logdir {folder / 'tensorboard'} "
            "(torch-tb-profiler is deprecated; its page loads Google Charts, so it does not render offline)",
            f"Flame graph: {folder / 'stacks.txt'} in https://www.speedscope.app or flamegraph.pl",
            f"Operators: {folder / 'ops.md'}; breakdown and overhead: {folder / 'summary.md'}"]


def ran_line(cfg: RunConfig, variant: Variant, runtime: dict[str, Any], env: dict[str, Any]) -> str:
    layout = "NHWC" if runtime["channels_last"] else "NCHW"
    return (f"Ran: model {cfg.model}, variant `{variant.name}` ({variant.description}), on {runtime['device']}: "
            f"{runtime['precision']}, {layout}, compile {cfg.compile}, {cfg.loader} loader, batch {cfg.batch_size}, "
            f"{cfg.optimizer} lr {cfg.lr:g}, seed {cfg.seed}. Machine: {machine_tag(env)}, torch {env['torch']}, "
            f"{env['torch_threads']} threads.")


def summary_markdown(meta: dict[str, Any], bd: pr.Breakdown, ops: pd.DataFrame, stacks_note: str,
                     folder: Path) -> str:
    s = meta["schedule"]
    return "\n".join([
        f"# Profile `{meta['id']}`", "", meta["ran"], "",
        f"Schedule: torch.profiler.schedule(wait={s['wait']}, warmup={s['warmup']}, active={s['active']}, repeat=1) "
        f"driven by the engine's loop (on_step → prof.step()); activities {', '.join(meta['activities'])}; "
        "record_shapes, profile_memory, with_stack. Created " + meta["created_utc"] + ".", "",
        f"## Step-time breakdown (mean over the {s['active']} recorded steps)", "", pr.breakdown_markdown(bd), "",
        "How: each recorded step (a ProfilerStep window, from one prof.step() to the next: the batch fetch, the "
        "step, the loop's bookkeeping) is cut at every event boundary, and each slice of wall time goes to the "
        "innermost operator running then on another thread where one runs (CUDA's autograd thread, while the step's "
        "thread waits), else to the innermost event of the step's thread, else to `untraced`; so the categories "
        "add up to the step's wall time (the mean over the recorded steps: one slow step weighs in fully). "
        "Times are the profiled run's, so they include the profiler's own cost (below): every recorded operator "
        "and traced Python call adds bookkeeping inside the step.", "",
        "## Profiler overhead", "", pr.overhead_markdown(meta["overhead"]), "",
        "## Top operators by self CPU time", "", pr.ops_markdown(ops, 10, meta["device_time"]), "",
        f"All operators: `ops.csv`; the top {TOP_OPS}: `ops.md`.", "",
        "## Files", "",
        "- `trace.json.gz`: the Chrome-trace JSON, gzipped (the TensorBoard file's bytes). Open it at "
        "https://ui.perfetto.dev or chrome://tracing.",
        f"- `tensorboard/{meta['tensorboard_file']}`: the same trace where the torch-tb-profiler plugin reads "
        f"it: `pip install .[profile]`, then `tensorboard --logdir {folder / 'tensorboard'}` (the plugin is "
        "deprecated and its page loads Google Charts from the internet: it does not render offline).",
        "- `ops.csv`, `ops.md`: operators by self CPU time, grouped by input shape (key_averages).",
        f"- `stacks.txt`: {stacks_note}",
        "- `breakdown.csv`, `breakdown.png`: the step-time breakdown above; `profile.json`: all of this as data.",
    ]) + "\n"


def profile_meta(run_id: str, folder: Path, cfg: RunConfig, variant: Variant, sched: Schedule, run: Any,
                 bd: pr.Breakdown, ops: pd.DataFrame, stacks: str, env: dict[str, Any]) -> dict[str, Any]:
    """``profile.json``: what ran, on what, the breakdown, the overhead and the top operators."""
    return {
        "id": run_id, "folder": str(folder), "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ran": ran_line(cfg, variant, run.runtime, env), "variant": variant.name, "config": asdict(cfg),
        "runtime": run.runtime, "machine": machine_tag(env), "environment": env, "schedule": asdict(sched),
        "activities": ["CPU"] + (["CUDA"] if run.runtime["device"].startswith("cuda") else []),
        "device_time": bool(ops["self_device_us"].sum() > 0),
        "breakdown": {"rows": bd.rows.to_dict("records"), "step_ms": bd.step_ms, "step_ms_mean": bd.step_ms_mean,
                      "categories_sum_ms": float(bd.rows["ms_per_step"].sum()), "device_busy_ms": bd.device_busy_ms},
        "overhead": overhead(run), "stacks_lines": stacks.count("\n"),
        "tensorboard_file": run.trace_file.name, "top_ops": ops.head(10).to_dict("records"),
    }


def write_profile(folder: Path, meta: dict[str, Any], run: Any, bd: pr.Breakdown, ops: pd.DataFrame,
                  stacks: str) -> None:
    stacks_note = (f"folded stacks ({meta['stacks_lines']:,} lines: the Python call stack, then the operator or "
                   "Python function; its self CPU µs), for https://www.speedscope.app or flamegraph.pl "
                   "(`flamegraph.pl stacks.txt > flame.svg`)" if stacks else
                   "empty: torch recorded no Python stacks for this run, so there is no flame graph")
    title = f"{meta['id']}: step time by category\n{meta['machine']}"
    write_files(folder, {  # all or none (a full disk: one line naming the file)
        "ops.csv": ops, "ops.md": pr.ops_markdown(ops, TOP_OPS, meta["device_time"]) + "\n", "stacks.txt": stacks,
        "breakdown.csv": bd.rows, "summary.md": summary_markdown(meta, bd, ops, stacks_note, folder),
        "profile.json": meta, "trace.json.gz": chrome_trace_gz(run.trace_file),
        "breakdown.png": pr.breakdown_png(bd, title)})


OPS_NEEDS = {"operator", "input_shapes", "self_cpu_us", "self_cpu_us_per_step", "self_device_us",
             "self_device_us_per_step"}
PROFILE_FIX = "fix: pass two folders written by `mnist-bench profile` (results/profiles/<id>)"


def load_profile(folder: str) -> tuple[pd.DataFrame, str]:
    """A profile folder's operator table and a one-line description; UsageError naming the problem."""
    path = Path(folder)
    if not path.is_dir():
        raise UsageError(f"--diff: {folder} is not a folder; {PROFILE_FIX}")
    if not (path / "ops.csv").is_file():
        raise UsageError(f"--diff: {folder} is not a profile folder (no ops.csv in it); {PROFILE_FIX}")
    try:
        ops = pd.read_csv(path / "ops.csv", dtype={"operator": str, "input_shapes": str}, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"--diff: {path / 'ops.csv'} cannot be read as a table ({exc}); {PROFILE_FIX}") from None
    missing = OPS_NEEDS - set(ops.columns)
    if missing or ops.empty:
        what = f"lacks the columns {', '.join(sorted(missing))}" if missing else "has no operators"
        raise UsageError(f"--diff: {path / 'ops.csv'} {what}; {PROFILE_FIX}")
    try:
        ran = json.loads((path / "profile.json").read_text(encoding="utf-8"))["ran"]
    except (OSError, ValueError, KeyError, TypeError):
        ran = "(no readable profile.json)"
    return ops, f"`{path}` — {ran}"


def diff_profiles(args: argparse.Namespace, out: Console) -> int:
    """``--diff A B``: print the operator diff and write it as ``B/diff.md``."""
    (a, a_line), (b, b_line) = load_profile(args.diff[0]), load_profile(args.diff[1])
    if args.min_change < 0 or args.min_us < 0:
        raise UsageError("--min-change and --min-us must be ≥ 0")
    diff = pr.diff_ops(a, b, args.by, args.min_change, args.min_us)
    metric = pr.diff_metric(a, b)
    markdown = pr.diff_markdown(diff, (a_line, b_line), metric, (args.min_change, args.min_us))
    try:
        write_files(args.diff[1], {"diff.md": markdown})
    except DiskFullError:  # one line naming the file, exit 1
        raise
    except OSError as exc:
        raise UsageError(f"--diff: cannot write {Path(args.diff[1]) / 'diff.md'} ({exc.strerror or exc}); fix: make "
                         "B a writable profile folder") from None
    if args.json:
        listed = diff[diff["status"] != "same"]
        out.file.write(to_json({"a": args.diff[0], "b": args.diff[1], "metric": metric,
                                "counts": diff["status"].value_counts().to_dict(),
                                "rows": listed.astype(object).where(listed.notna(), None).to_dict("records")}) + "\n")
        out.file.flush()
        return 0
    out.print(markdown, highlight=False, markup=False, soft_wrap=True)
    out.print(f"Wrote {Path(args.diff[1]) / 'diff.md'}", highlight=False, markup=False)
    return 0


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.diff:
        return diff_profiles(args, out)
    cfg, variant = config(args)
    sched = Schedule(args.wait, args.warmup, args.active)
    if sched.problem():
        raise UsageError(sched.problem())
    results = prepare_run(cfg, args.results)
    training = prepare_training(cfg, sched)
    run_id, folder = new_profile_folder(results, cfg.model, variant.name)
    err.print(f"profiling {cfg.model} {variant.name}: {sched.steps} steps under the profiler, {sched.active} "
              f"recorded; {sched.active} before and after without it", highlight=False)
    with removed_on_failure(folder):
        run_ = profile_training(training, sched, folder / "tensorboard", run_id)
        env = environment()
        bd = pr.breakdown(list(run_.prof.events()))
        ops = op_rows(run_.prof, sched.active)
        stacks = folded_stacks(run_.prof.events())
        meta = profile_meta(run_id, folder, cfg, variant, sched, run_, bd, ops, stacks, env)
        write_profile(folder, meta, run_, bd, ops, stacks)
    if args.json:
        out.file.write(to_json(meta) + "\n")
        out.file.flush()
        return 0
    oh = meta["overhead"]
    top = bd.rows.sort_values("ms_per_step", ascending=False).head(3)
    out.print(f"{meta['ran']}\nStep {oh['median_ms_without']:.2f} ms without the profiler, {oh['median_ms_with']:.2f} "
              f"ms with it ({oh['ratio']:.2f}×; medians of {oh['n_without']} and {oh['n_with']} steps). Largest: "
              + ", ".join(f"{r.category} {r.ms_per_step:.2f} ms" for r in top.itertuples())
              + f".\nWrote {folder}/", highlight=False, markup=False, soft_wrap=True)
    if oh["contention"]["noisy"]:
        out.print(f"Noisy: other processes used up to {oh['contention']['other_cores_max']:.2f} cores beside the "
                  "passes; rerun on a quiet machine before trusting the overhead figure", highlight=False)
    for line in view_lines(folder):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0

