"""``mnist-bench`` command line: argparse → RunConfig → engine → results (thin by design).

    mnist-bench data [--data-root DIR] [--repair]     prepare and verify MNIST
    mnist-bench machine [--model v2] [--json]          capabilities, matmul peaks, what auto picks
    mnist-bench models                                 registry: parameters, FLOPs per image
    mnist-bench train --model v2 --protocol seed [--json] [--results DIR] [...]
    mnist-bench reproduce [--seeds 42,0,1] [--results DIR] [--readme README.md]
    mnist-bench speedup [--model v2] [--seeds 3] [--precision auto] [--results DIR] [--readme README.md]
    mnist-bench tta [--model fastnet] [--target 99.0] [--seeds 5] [--precision auto] [--json] [--results DIR]

Also ``python -m mnist_models``. Bad input prints one line ``mnist-bench: error: …`` and exits 2.
Progress goes to stderr (a rich bar on a terminal, one line per epoch otherwise); tables and
``--json`` go to stdout, so the last line of stdout is the JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

from . import config as C

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user; reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def parse_seeds(text: str) -> list[int]:
    """``"5"`` → seeds 0–4; ``"42,0,1"`` → those seeds (a trailing comma makes one seed a list)."""
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise UsageError(f"--seeds takes a count (5 → seeds 0–4) or a comma list (42,0,1), got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds needs at least one seed and no repeats, got {text!r}")
    return seeds


def _add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="DIR",
                   help="MNIST root (default: $MNIST_BENCH_DATA, else ~/.cache/mnist-bench)")


def _add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", metavar="DIR", default="results",
                   help="results folder; epoch rows are appended to DIR/runs.jsonl (default: results)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnist-bench", description="Benchmark harness for MNIST classifiers in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("data", help="prepare and verify MNIST (SHA-256 of the four IDX files)")
    _add_data_root(p)
    p.add_argument("--repair", action="store_true", help="rebuild files that fail their checksum")

    sub.add_parser("models", help="list the registered models with parameters and FLOPs per image")

    p = sub.add_parser("machine", help="this machine's capabilities (ISA, native bf16, caches) and measured "
                                       "matmul peaks; with --model, what precision auto picks for it")
    p.add_argument("--model", help="also probe this registry model's training step: what auto resolves to")
    p.add_argument("--batch-size", type=_int, default=None, help="batch size of that probe (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")

    p = sub.add_parser("train", help="train one model and report per-epoch accuracy, loss and time")
    p.add_argument("--model", help="registry name (see `mnist-bench models`; default v2)")
    p.add_argument("--protocol", help="apply a protocol's defaults first: seed (the notebook's settings)")
    p.add_argument("--device", help="auto | cpu | cuda (default auto)")
    p.add_argument("--precision", help="fp32 | bf16 | fp16 (CUDA only) | auto (the faster of fp32 and bf16 here, "
                                       "measured); default auto, or fp32 under --protocol seed")
    p.add_argument("--compile", help="none | default | reduce-overhead | max-autotune (default none)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC (--channels-last) or NCHW (--no-channels-last); default auto: NCHW with the "
                        "seed loader, the measured faster one with the fast loader")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="capture the whole training step in one CUDA graph (CUDA, fp32/bf16, fast loader)")
    p.add_argument("--loader", help="seed (torchvision DataLoader) | fast (data on the device)")
    p.add_argument("--batch-size", type=_int, help="images per step (default 32)")
    p.add_argument("--lr", type=_float, help="learning rate (default 0.1; 0.01 for v1 under --protocol seed)")
    p.add_argument("--optimizer", help="sgd | adam (default sgd)")
    p.add_argument("--label-smoothing", type=_float, help="training loss label smoothing, 0 to <1 (default 0)")
    p.add_argument("--eval-batch-size", type=_int, help="images per evaluation batch (default: --batch-size)")
    p.add_argument("--epochs", type=_int, help="training epochs (default 3)")
    p.add_argument("--seed", type=_int, help="torch seed (default 42)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    _add_data_root(p)
    _add_results(p)

    p = sub.add_parser("reproduce", help="train v0, v1, v2 under the seed protocol and write the comparison table")
    p.add_argument("--seeds", default="42,", help="count (3 → 0,1,2) or comma list (default: 42, the notebook's)")
    p.add_argument("--models", default=",".join(_seed_models()), help="comma list (default v0,v1,v2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--readme", metavar="FILE",
                   help="also replace the block between <!-- seed-table:start/end --> markers in FILE")
    _add_data_root(p)
    _add_results(p)

    p = sub.add_parser("tta", help="time to a target test accuracy, one process per seed, MLPerf-style report")
    p.add_argument("--model", default="fastnet", help="registry model (default fastnet)")
    p.add_argument("--target", type=_float, default=99.0, help="test accuracy to reach, percent (default 99.0)")
    p.add_argument("--seeds", default="5", help="count (5 → seeds 0–4, the default) or comma list")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--precision", default="auto",
                   help="fp32 | bf16 | fp16 (CUDA only) | auto: the faster of fp32 and bf16 on this machine, "
                        "measured once before the seeds (default auto)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC or NCHW; default: measured with the precision")
    p.add_argument("--max-epochs", type=_int, default=None, help="training budget in epochs (default 1)")
    p.add_argument("--eval-every", type=_int, default=None, help="steps between evaluations (default 50)")
    p.add_argument("--eval-from", type=_float, default=None,
                   help="fraction of the budget before the first evaluation, 0 to <1 (default 0.5)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--readme", metavar="FILE",
                   help="also replace the block between <!-- tta-table:start/end --> markers in FILE")
    _add_data_root(p)
    _add_results(p)

    p = sub.add_parser("tta-seed")  # one seed in its own process, used by tta (no help: not listed)
    p.add_argument("settings", help=argparse.SUPPRESS)

    p = sub.add_parser("speedup", help="the fast path (fp32, bf16) against the notebook's way, interleaved")
    p.add_argument("--model", default="v2", help="registry model (default v2)")
    p.add_argument("--seeds", default="3", help="count (3 → 0,1,2, the default) or comma list")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--precision", default="auto",
                   help="comma list of fast-path precisions: fp32, bf16, fp16 (CUDA), auto (default auto: "
                        "the faster here, measured); e.g. fp32,bf16")
    p.add_argument("--readme", metavar="FILE",
                   help="also replace the block between <!-- speedup-table:start/end --> markers in FILE")
    _add_data_root(p)
    _add_results(p)
    return parser


def _seed_models() -> tuple[str, ...]:
    from .reproduce import SEED_MODELS

    return SEED_MODELS


# --------------------------------------------------------------------------------------------
# Progress reporting (stderr)


class EpochProgress:
    """A rich progress bar on a terminal; one plain line per epoch otherwise (CI logs)."""

    def __init__(self, console: Console, label: str, epochs: int) -> None:
        self.console, self.label, self.epochs = console, label, epochs
        self.bar = None
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=console, transient=True)
            self.task = self.bar.add_task(label, total=None)
        self.epoch = 1

    def __enter__(self) -> EpochProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def on_batch(self, phase: str, done: int, total: int) -> None:
        # Update about 100 times a pass: per-batch updates cost more than a small model's step.
        if self.bar is not None and (done == total or done % max(1, total // 100) == 0):
            self.bar.update(self.task, completed=done, total=total,
                            description=f"{self.label} epoch {self.epoch}/{self.epochs} {phase}")

    def on_epoch(self, row: dict[str, float]) -> None:
        self.console.print(
            f"{self.label} epoch {int(row['epoch'])}/{self.epochs}: train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc_pct']:.2f}% | test loss {row['test_loss']:.4f} acc {row['test_acc_pct']:.2f}% "
            f"| {row['train_s']:.2f} s ({row['train_img_per_s']:,.0f} img/s), eval {row['eval_s']:.2f} s",
            highlight=False, soft_wrap=True)
        self.epoch += 1

    @property
    def on_batch_callback(self) -> Callable[[str, int, int], None] | None:
        return self.on_batch if self.bar is not None else None


# --------------------------------------------------------------------------------------------
# Commands


def cmd_data(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .data import prepare, resolve_root

    root = resolve_root(args.data_root)
    statuses = prepare(root, repair=args.repair)
    table = Table(title=f"MNIST at {root}", title_justify="left")
    for column, justify in (("file", "left"), ("source", "left"), ("bytes", "right"), ("sha256", "left"),
                            ("check", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    for s in statuses:
        table.add_row(s.name, s.source, f"{s.size_bytes:,}", s.sha256[:16] + "…", "ok")
    out.print(table)
    out.print("All four files match the official SHA-256 checksums.", highlight=False)
    return 0


def cmd_machine(args: argparse.Namespace, out: Console, err: Console) -> int:
    import torch

    from .machine import bf16_note, capabilities
    from .models import MODELS, UnknownModelError, list_models
    from .results import environment, to_json
    from .runtime import matmul_peak_gflops, measured_peak_sizes, peak_precisions, resolve_auto, resolve_device

    if args.model is not None and args.model not in MODELS:
        raise UnknownModelError(f"unknown model {args.model!r}; known models: {', '.join(list_models())}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    device = resolve_device(args.device)
    caps = capabilities()
    devices = [torch.device("cpu")] + ([device] if device.type == "cuda" else [])
    peaks = {f"{d.type}/{p}": matmul_peak_gflops(d, p) for d in devices for p in peak_precisions(d)}
    report: dict[str, Any] = {**caps, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                              "matmul_peak_gflop_per_s": peaks, "matmul_peak_size": measured_peak_sizes()}
    if args.model is not None:
        batch = args.batch_size or 32
        choice = resolve_auto(args.model, device, "auto", None, "fast", batch)
        report["auto"] = {"model": args.model, "device": device.type, "batch_size": batch,
                          "precision": choice.precision, "channels_last": choice.channels_last,
                          "reason": choice.reason, "probe_step_ms": dict(choice.step_ms)}
    if args.json:
        out.file.write(to_json({**report, "environment": environment()}) + "\n")
        out.file.flush()
        return 0
    table = Table(title="This machine", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    caches = ", ".join(f"{k} {v:,} KiB" for k, v in caps["cache_kib"].items()) or "unknown"
    for label, value in (("kind", caps["machine_kind"]), ("CPU", f"{caps['cpu']} ({caps['cpu_vendor']}, "
                                                                  f"{caps['arch']}, {caps['cpu_count']} cores)"),
                         ("torch dispatch", str(caps["cpu_capability"])), ("ISA flags", caps["cpu_isa"] or "none"),
                         ("bf16", "native (hardware bf16, oneDNN uses it)" if caps["bf16_native"] else bf16_note("cpu")),
                         ("caches (per core; L3 shared)", caches), ("GPU", caps["gpu"] or "none"),
                         ("torch", f"{torch.__version__}, {torch.get_num_threads()} threads")):
        table.add_row(label, value)
    for key, value in peaks.items():
        table.add_row(f"matmul peak {key}", f"{value:,.1f} GFLOP/s (square {measured_peak_sizes()[key]}, best call)")
    if args.model is not None:
        auto = report["auto"]
        table.add_row(f"auto for {args.model} (batch {auto['batch_size']})",
                      f"{auto['precision']}, {'NHWC' if auto['channels_last'] else 'NCHW'}: {auto['reason']}")
    out.print(table)
    return 0


def cmd_models(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .models import MODELS, count_parameters, forward_flops

    table = Table(title="Registered models", title_justify="left")
    for column, justify in (("name", "left"), ("parameters", "right"), ("FLOPs/image", "right"),
                            ("description", "left")):
        table.add_column(column, justify=justify)
    for name, spec in MODELS.items():
        model = spec.builder()
        table.add_row(name, f"{count_parameters(model):,}", f"{forward_flops(model):,}", spec.description)
    out.print(table)
    out.print("FLOPs: forward pass, 2 per multiply-add, matmul and convolution only.", highlight=False)
    return 0


def _train_config(args: argparse.Namespace) -> C.RunConfig:
    settings = {name: getattr(args, name) for name in (
        "model", "device", "precision", "compile", "channels_last", "cuda_graph", "loader", "batch_size",
        "eval_batch_size", "lr", "optimizer", "label_smoothing", "epochs", "seed", "data_root")}
    if args.protocol is None and settings["precision"] is None:
        settings["precision"] = "auto"  # the project chooses (a protocol fixes its own precision)
    return C.RunConfig.from_protocol(args.protocol, **settings)


def _run_fit(cfg: C.RunConfig, label: str, err: Console):  # noqa: ANN202
    from .engine import fit

    with EpochProgress(err, label, cfg.epochs) as progress:
        return fit(cfg, on_batch=progress.on_batch_callback, on_epoch=progress.on_epoch)


def _prepare_run(cfg: C.RunConfig, results_dir: str) -> Path:
    """Validate everything that can fail fast before training: device, data, results folder (before
    any automatic choice is measured)."""
    from .data import prepare
    from .results import check_writable
    from .runtime import Runtime

    Runtime.check(cfg)
    prepare(cfg.data_root)
    return check_writable(results_dir)


def cmd_train(args: argparse.Namespace, out: Console, err: Console) -> int:
    from dataclasses import asdict

    from .results import append_rows, environment, epoch_records, new_run_id, to_json

    cfg = _train_config(args)
    results_dir = _prepare_run(cfg, args.results)
    from .runtime import Runtime

    reason = Runtime.from_config(cfg).auto_reason  # measured here, before the progress bar; cached for fit
    if reason:
        err.print(reason, highlight=False, soft_wrap=True)
    run_id = new_run_id()
    result = _run_fit(cfg, cfg.model, err)
    append_rows(results_dir, epoch_records(run_id, "train", cfg, result.rows, result.runtime))
    last = result.rows[-1]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "config": asdict(cfg),
        "runtime": result.runtime,
        "test_acc_pct": last["test_acc_pct"],
        "test_loss": last["test_loss"],
        "seconds_per_epoch": statistics.median(r["train_s"] for r in result.rows),
        "images_per_s": statistics.median(r["train_img_per_s"] for r in result.rows),
        "epochs": result.rows,
        "environment": environment(),
    }
    if args.json:
        out.file.write(to_json(summary) + "\n")
        out.file.flush()
    else:
        ran = f"{result.runtime['precision']}, {'NHWC' if result.runtime['channels_last'] else 'NCHW'}"
        out.print(f"{cfg.model} ({ran}): test accuracy {last['test_acc_pct']:.2f}%, test loss {last['test_loss']:.4f}, "
                  f"{summary['seconds_per_epoch']:.2f} s/epoch (median of {len(result.rows)}), "
                  f"{summary['images_per_s']:,.0f} img/s; rows appended to {results_dir / 'runs.jsonl'}",
                  highlight=False, soft_wrap=True)
    return 0


def cmd_reproduce(args: argparse.Namespace, out: Console, err: Console) -> int:
    from . import reproduce

    models = [m for m in args.models.split(",") if m]
    if not models:
        raise UsageError(f"--models needs at least one model name, got {args.models!r}")
    cases = reproduce.make_cases(models, parse_seeds(args.seeds), device=args.device, data_root=args.data_root)
    return _run_comparison(cases, args, reproduce, "reproduce", "seed_reproduction", "seed-table", out, err)


def cmd_speedup(args: argparse.Namespace, out: Console, err: Console) -> int:
    from . import speedup

    precisions = [p for p in args.precision.split(",") if p]
    if not precisions or len(set(precisions)) != len(precisions):
        raise UsageError(f"--precision takes a comma list without repeats, e.g. fp32,bf16, got {args.precision!r}")
    cases = speedup.make_cases(args.model, parse_seeds(args.seeds), precisions, device=args.device,
                               data_root=args.data_root)
    return _run_comparison(cases, args, speedup, "speedup", "speedup", "speedup-table", out, err)


def _run_comparison(cases: list, args: argparse.Namespace, report: Any, kind: str, stem: str, marker: str,
                    out: Console, err: Console) -> int:
    """Train the cases in order (each epoch appended to runs.jsonl), then write ``stem``.csv (one
    row per case) and ``stem``.md (``report.summarize`` + ``report.report_markdown``), print the
    table, and splice it into ``--readme`` between the ``marker`` comments."""
    import time

    import pandas as pd

    from .reproduce import case_row
    from .results import (append_rows, environment, epoch_records, has_markers, new_run_id, splice_machine_block,
                          write_text)

    if args.readme and not has_markers(args.readme, marker):
        raise UsageError(f"--readme {args.readme}: no such file, or no <!-- {marker}:start --> / "
                         f"<!-- {marker}:end --> markers in it")
    results_dir = _prepare_run(cases[0].config, args.results)
    run_id = new_run_id()
    rows = []
    for i, case in enumerate(cases, start=1):
        err.print(f"[{i}/{len(cases)}] {case.label}, seed {case.config.seed}, lr {case.config.lr:g}", highlight=False)
        start = time.perf_counter()
        result = _run_fit(case.config, case.label, err)
        wall = time.perf_counter() - start
        append_rows(results_dir, epoch_records(run_id, kind, case.config, result.rows, result.runtime))
        rows.append({**case_row(case, result.rows), "wall_s": wall, "precision": result.runtime["precision"],
                     "channels_last": result.runtime["channels_last"], "auto_reason": result.runtime["auto_reason"]})
    frame = pd.DataFrame(rows)
    markdown = report.report_markdown(report.summarize(frame), frame, environment(), run_id)
    write_text(results_dir / f"{stem}.csv", frame.to_csv(index=False))
    write_text(results_dir / f"{stem}.md", markdown + "\n")
    out.print(markdown, highlight=False, soft_wrap=True)
    if args.readme:
        splice_machine_block(args.readme, marker, markdown)
    err.print(f"wrote {results_dir / stem}.md and .csv", highlight=False)
    return 0


def cmd_tta(args: argparse.Namespace, out: Console, err: Console) -> int:
    from dataclasses import asdict, replace

    import pandas as pd

    from . import tta
    from .results import (append_rows, environment, epoch_records, has_markers, new_run_id, splice_machine_block,
                          to_json, write_text)

    if not 0 < args.target <= 100:
        raise UsageError(f"--target is a test accuracy in percent (0, 100], got {args.target:g}")
    for name in ("max_epochs", "eval_every"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")
    if args.eval_from is not None and not 0 <= args.eval_from < 1:
        raise UsageError(f"--eval-from is a fraction of the budget in [0, 1), got {args.eval_from:g}")
    base = tta.TTASettings(model=args.model, target_pct=args.target, device=args.device, precision=args.precision,
                           channels_last=args.channels_last, max_epochs=args.max_epochs or tta.TTA_MAX_EPOCHS,
                           eval_every=args.eval_every or tta.TTA_EVAL_EVERY,
                           eval_from=tta.TTA_EVAL_FROM if args.eval_from is None else args.eval_from,
                           data_root=args.data_root)
    seeds = parse_seeds(args.seeds)
    if args.readme and not has_markers(args.readme, "tta-table"):
        raise UsageError(f"--readme {args.readme}: no such file, or no <!-- tta-table:start --> / "
                         "<!-- tta-table:end --> markers in it")
    results_dir = _prepare_run(tta.run_config(base), args.results)
    base, auto = tta.resolve(base)
    if auto["auto_reason"]:
        err.print(f"{auto['auto_reason']} (probe {auto['auto_probe_s']:.2f} s, before the seeds)", highlight=False)
    run_id = new_run_id()
    rows = []
    for seed in seeds:
        settings = replace(base, seed=seed)
        err.print(f"seed {seed}: training {settings.model} ({settings.precision}) to {settings.target_pct:g}% in a "
                  "fresh process", highlight=False)
        row = {**tta.run_in_process(settings), **auto}
        err.print(f"seed {seed}: " + (f"reached {row['test_acc_pct']:.2f}% after {row['from_start_s']:.2f} s from "
                  f"process start ({row['from_first_step_s']:.2f} s from the first step, {row['steps']} steps)"
                  if row["reached"] else f"did not reach the target ({row['test_acc_pct']:.2f}% at the end)"),
                  highlight=False)
        append_rows(results_dir, epoch_records(run_id, "tta", settings, [row]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    summary = tta.summarize(frame)
    markdown = tta.report_markdown(frame, summary, environment(), run_id)
    write_text(results_dir / "tta.csv", frame.to_csv(index=False))
    write_text(results_dir / "tta.md", markdown + "\n")
    if args.json:
        out.file.write(to_json({"run_id": run_id, "settings": asdict(base), **auto, **summary, "seeds": rows,
                                "environment": environment()}) + "\n")
        out.file.flush()
    else:
        out.print(markdown, highlight=False, soft_wrap=True)
    if args.readme:
        splice_machine_block(args.readme, "tta-table", markdown)
    err.print(f"wrote {results_dir / 'tta.md'} and .csv", highlight=False)
    return 0


def cmd_tta_seed(args: argparse.Namespace, out: Console, err: Console) -> int:
    import json

    from .tta import TTASettings, run_one

    row = run_one(TTASettings(**json.loads(args.settings)))  # first: its start-up clock must not see our imports
    from .results import to_json

    out.file.write(to_json(row) + "\n")
    out.file.flush()
    return 0


COMMANDS = {"data": cmd_data, "machine": cmd_machine, "models": cmd_models, "train": cmd_train, "reproduce": cmd_reproduce,
            "speedup": cmd_speedup, "tta": cmd_tta, "tta-seed": cmd_tta_seed}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    out = Console(soft_wrap=True)
    err = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "tta-seed":  # its clock starts at process start: import nothing heavy first
            return cmd_tta_seed(args, out, err)
    except UsageError as exc:
        print(f"mnist-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from .data import DataError
    from .engine import TrainingError
    from .models import UnknownModelError
    from .results import ResultsError

    try:
        return COMMANDS[args.command](args, out, err)
    except (UsageError, C.ConfigError, DataError, UnknownModelError, ResultsError, TrainingError) as exc:
        print(f"mnist-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mnist-bench: interrupted", file=sys.stderr)
        return 130
