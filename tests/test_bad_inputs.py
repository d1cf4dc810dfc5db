"""The bad-input inventory: every bad input the tool handles, as data, with one test over all of it.

``CASES`` is the inventory that ``docs/bad-inputs.md`` lists row by row (``test_the_doc_lists_the_inventory``
keeps the two from drifting). Each case is a command line with one thing wrong (an unknown name, a number
out of range, text where a number goes, a missing or wrong kind of file, a device this machine lacks, flags
that cannot go together, an environment variable pointing nowhere), and ``test_bad_input`` proves for each:

- exit code 2;
- exactly one non-empty line on stderr, ``mnist-bench: error: …``, naming the problem and the fix (the
  case's ``problem`` and ``fix`` substrings); a warning printed beside it would count as a second line;
- no traceback on stdout or stderr, and nothing on stdout;
- the sandbox byte-identical afterwards: a results folder seeded with real files (``runs.jsonl`` lines from
  the committed one, a committed run folder and ``latest`` pointing at it, ``tta.csv``), the input files the
  case points at, and the working directory (so no stray ``results/`` either).

Most cases call ``mnist_models.cli.main.main(argv)`` in-process. The cases marked ``script``, ``module``
and ``bench`` run as real processes (the console script, ``python -m mnist_models``, and
``python -m pytest bench --benchmark-only …``), started together in the background when the first case
runs, so that their start-ups (torch, pytest) overlap the in-process cases. Every case exits before any
training, so the whole file takes seconds of CPU per process started.

Where a CUDA device is present, the cases that are bad only without one (``--device cuda``) are skipped.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli import SUBPROCESS_TIMEOUT, fast_train_argv, run_cli
from test_run_report import COMMITTED_RUNS, copy_run

from mnist_models.cli import main as cli
from mnist_models.config import RunConfig
from mnist_models.models import get_model
from mnist_models.train.checkpoint import metadata_digest, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-inputs.md"
WORKERS = min(4, os.cpu_count() or 2)  # processes started at once (each imports torch: ~4 s of CPU)

UNKNOWN, RANGE, TYPE, FILE, DEVICE, COMBINATION, ENV, MODEL, DATA, DATABASE = (
    "unknown name", "out of range", "wrong type", "wrong file", "no device", "incompatible", "environment",
    "unusable model", "bad data set", "database")
CATEGORIES = (UNKNOWN, RANGE, TYPE, FILE, DEVICE, COMBINATION, ENV, MODEL, DATA, DATABASE)

# Models of one's own that cannot be used (the sandbox's inputs/nets.py), each refused before training.
NETS = """
import torch
from torch import nn

class Good(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

class NotAModule:
    pass

instance = Good()

class Raises(nn.Module):
    def __init__(self):
        raise RuntimeError("no weights here")

def returns_int():
    return 3

class ForwardRaises(Good):
    def forward(self, x):
        return self.fc(x)  # not flattened: (2, 1, 28, 28) into Linear(784, 10)

class FiveClasses(Good):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 5)

class NoParams(nn.Module):
    def forward(self, x):
        return torch.zeros(len(x), 10)
"""

# What each command's cases run with besides their one bad part (argparse and pytest: the last value wins):
# a fast config, so that a check that wrongly passed would cost seconds, and the sandbox's folders.
PREFIX = {
    "train": tuple(fast_train_argv(Path("{data}"), Path("{results}"))),
    "reproduce": ("reproduce", "--models", "v0", "--seeds", "42,", "--data-root", "{data}", "--results", "{results}"),
    "speedup": ("speedup", "--model", "v0", "--seeds", "42,", "--data-root", "{data}", "--results", "{results}"),
    "tta": ("tta", "--seeds", "1", "--max-epochs", "1", "--data-root", "{data}", "--results", "{results}"),
    "profile": ("profile", "--model", "v0", "--data-root", "{data}", "--results", "{results}"),
    "scaling": ("scaling", "--model", "v0", "--steps", "1", "--rounds", "1", "--warmup", "0", "--profile-steps", "1",
                "--data-root", "{data}", "--results", "{results}"),
    "bench": ("--bench-models", "v0", "--bench-variants", "eager", "--bench-results", "{results}"),
}


@dataclass(frozen=True)
class Case:
    """One bad input: ``command`` with ``extra`` (after the command's ``PREFIX``, unless ``bare``), the
    substrings of the one error line that name the ``problem`` and the ``fix``, and how it is run."""

    id: str
    category: str
    command: str  # a CLI command, "" for none, or "bench" (pytest bench --benchmark-only)
    extra: tuple[str, ...]
    problem: tuple[str, ...]
    fix: tuple[str, ...]
    how: str = "cli"  # cli: in-process; script: the console script; module: python -m mnist_models; bench
    env: tuple[tuple[str, str | None], ...] = ()  # set (None: unset) for the command
    bare: bool = False  # no PREFIX
    needs: str = ""  # "no-cuda": bad only without a CUDA device; "proc": needs Linux's /proc

    def argv(self) -> list[str]:
        head = () if self.bare or self.command not in PREFIX else PREFIX[self.command]
        if self.command == "bench" or head:
            return [*head, *self.extra]
        return [self.command, *self.extra] if self.command else list(self.extra)


def case(id: str, category: str, command: str, extra: tuple[str, ...], problem: str | tuple[str, ...],
         fix: str | tuple[str, ...], **kw: object) -> Case:
    """A ``Case``; a lone problem or fix substring may be given as a string."""
    problem = (problem,) if isinstance(problem, str) else problem
    fix = (fix,) if isinstance(fix, str) else fix
    return Case(id, category, command, extra, problem, fix, **kw)  # type: ignore[arg-type]


HELP = "see `mnist-bench --help`"
TRAIN_HELP = "see `mnist-bench train --help`"
MODELS = "known models: v0, v1, v2"
NO_CUDA = ("--device cuda was asked for but this machine has no CUDA device", "fix: use --device cpu")
FP16_CPU = ("fp16 (autocast + GradScaler) runs on CUDA only", "fix: use --precision bf16, fp32 or auto")
RESULTS = ("results directory", "fix: pass --results DIR with a writable folder")
DATA_DIR = ("cannot create the data folder", "fix: pass --data-root DIR (or set MNIST_BENCH_DATA)")
SHA = ("does not match the official", "fix: `mnist-bench data --repair`")
SAVE = "fix: pass a file written by `mnist-bench train --save PATH`"
IMAGE = "fix: pass the path of a PNG, JPEG, BMP or GIF file"
RUN_DIR = "fix: pass a run folder written by the benchmark suite"
PROFILE_DIRS = "fix: pass two folders written by `mnist-bench profile`"
SCHEDULE = ("profiler schedule", "fix: e.g. --wait 1 --warmup 3 --active 5")
SEEDS = ("--seeds needs at least one seed and no repeats", "fix: a count ≥ 1")
MARKERS = "fix: add both markers to the file"
LIMIT = "fix: pass --batch-size from 1 to 60,000"
PREDICT = ("--checkpoint", "{plain_pt}", "{image}")  # a checkpoint predict refuses, an image it reads
OWN_FIX = "fix: lay it out as train/<0-9>/*.png and test/<0-9>/*.png"
NPZ_FIX = "fix: save x_train, y_train, x_test, y_test with np.savez"

CASES: list[Case] = [
    # Unknown names
    case("command-unknown", UNKNOWN, "frobnicate", (), "invalid choice: 'frobnicate'", ("'train'", HELP),
         how="script"),
    case("command-missing", UNKNOWN, "", (), "the following arguments are required: COMMAND", HELP),
    case("option-unknown", UNKNOWN, "train", ("--frobnicate",), "unrecognized arguments: --frobnicate", HELP),
    case("models-option", UNKNOWN, "models", ("--sort",), "unrecognized arguments: --sort", HELP),
    case("train-model", UNKNOWN, "train", ("--model", "v9"), "unknown model 'v9'", MODELS),
    case("train-device", UNKNOWN, "train", ("--device", "tpu"), "unknown device 'tpu'",
         "choose one of: auto, cpu, cuda"),
    case("train-precision", UNKNOWN, "train", ("--precision", "fp8"), "unknown precision 'fp8'",
         "choose one of: fp32, bf16, fp16, auto"),
    case("train-compile", UNKNOWN, "train", ("--compile", "turbo"), "unknown compile 'turbo'",
         "choose one of: none, default, reduce-overhead, max-autotune"),
    case("train-loader", UNKNOWN, "train", ("--loader", "slow"), "unknown loader 'slow'",
         "choose one of: notebook, fast"),
    case("train-optimizer", UNKNOWN, "train", ("--optimizer", "rmsprop"), "unknown optimizer 'rmsprop'",
         "choose one of: sgd, adam"),
    case("train-protocol", UNKNOWN, "train", ("--protocol", "paper"), "unknown protocol 'paper'",
         "choose one of: notebook"),
    case("machine-model", UNKNOWN, "machine", ("--model", "v9"), "unknown model 'v9'", MODELS),
    case("machine-device", UNKNOWN, "machine", ("--device", "tpu"), "unknown device 'tpu'", "choose one of"),
    case("predict-device", UNKNOWN, "predict", ("--device", "tpu", *PREDICT), "unknown device 'tpu'", "choose one of"),
    case("predict-invert", UNKNOWN, "predict", ("--invert", "maybe", *PREDICT), "invalid choice: 'maybe'",
         ("'auto', 'yes', 'no'", "see `mnist-bench predict --help`")),
    case("reproduce-model", UNKNOWN, "reproduce", ("--models", "v0,v9"), "unknown model 'v9'", MODELS),
    case("reproduce-device", UNKNOWN, "reproduce", ("--device", "tpu"), "unknown device 'tpu'", "choose one of"),
    case("speedup-model", UNKNOWN, "speedup", ("--model", "v9"), "unknown model 'v9'", MODELS),
    case("speedup-precision", UNKNOWN, "speedup", ("--precision", "fp8"), "unknown precision 'fp8'", "choose one of"),
    case("tta-model", UNKNOWN, "tta", ("--model", "v9"), "unknown model 'v9'", MODELS),
    case("profile-variant", UNKNOWN, "profile", ("--variant", "turbo"), "unknown variant 'turbo'",
         ("known variants: eager", "fix: --variant NAME")),
    case("profile-diff-by", UNKNOWN, "profile", ("--by", "name", "--diff", "{folder}", "{folder}"),
         "invalid choice: 'name'", "'shape', 'op'", bare=True),
    case("compare-metric", UNKNOWN, "compare", ("{run}", "{run}", "--metric", "speed"), "--metric 'speed'",
         "expected a comma list of time, accuracy, memory, compile (or all)"),
    case("bench-device", UNKNOWN, "bench", ("--bench-device", "tpu"), "unknown --bench-device tpu",
         "choose from: cpu, cuda (or all)", how="bench"),
    case("bench-model", UNKNOWN, "bench", ("--bench-models", "v9"), "--bench-models: unknown model 'v9'",
         (MODELS, "or your own as path/to/file.py:Name"), how="bench"),
    case("train-dataset", UNKNOWN, "train", ("--dataset", "kmnist"), "unknown dataset 'kmnist'",
         "fix: pass --dataset with one of: mnist, fashion-mnist"),
    case("data-dataset", UNKNOWN, "data", ("--dataset", "kmnist"), "unknown dataset 'kmnist'",
         "fix: pass --dataset with one of: mnist, fashion-mnist"),
    case("bench-dataset", UNKNOWN, "bench", ("--bench-dataset", "kmnist"), "unknown dataset 'kmnist'",
         "fix: pass --bench-dataset with one of: mnist, fashion-mnist", how="bench"),
    case("train-model-name-missing", UNKNOWN, "train", ("--model", "{nets}:Nope"), "has no 'Nope' (it defines: "
         "FiveClasses, ForwardRaises, Good, NoParams, Raises, returns_int)",
         "fix: pass one of its names after the colon"),
    case("bench-variant", UNKNOWN, "bench", ("--bench-variants", "turbo"), "unknown --bench-variants variant turbo",
         "choose from: eager, channels_last", how="bench"),
    case("bench-profile", UNKNOWN, "bench", ("--bench-profile", "huge"), "unknown --bench-profile 'huge'",
         "choose from: quick, full", how="bench"),
    # Numbers out of range
    case("train-epochs-zero", RANGE, "train", ("--epochs", "0"), ("epochs", "got 0"), "must be an integer ≥ 1"),
    case("train-epochs-negative", RANGE, "train", ("--epochs", "-1"), ("epochs", "got -1"), "must be an integer ≥ 1"),
    case("train-batch-size-zero", RANGE, "train", ("--batch-size", "0"), ("batch size", "got 0"),
         "must be a positive integer"),
    case("train-batch-size-negative", RANGE, "train", ("--batch-size", "-3"), ("batch size", "got -3"),
         "must be a positive integer"),
    case("train-batch-size-huge", RANGE, "train", ("--batch-size", "99999999"),
         "batch size 99,999,999 is more than the 60,000 training images", LIMIT),
    case("train-eval-batch-size-zero", RANGE, "train", ("--eval-batch-size", "0"), ("evaluation batch size", "got 0"),
         "must be a positive integer"),
    case("train-lr-zero", RANGE, "train", ("--lr", "0"), ("learning rate", "got 0.0"), "must be a finite number > 0"),
    case("train-lr-negative", RANGE, "train", ("--lr", "-0.1"), ("learning rate", "got -0.1"),
         "must be a finite number > 0"),
    case("train-lr-inf", RANGE, "train", ("--lr", "inf"), ("learning rate", "got inf"), "must be a finite number > 0"),
    case("train-label-smoothing-one", RANGE, "train", ("--label-smoothing", "1"), ("label smoothing", "got 1.0"),
         "must be in [0, 1)"),
    case("train-seed-overflow", RANGE, "train", ("--seed", "99999999999999999999999"),
         "seed must be an integer that fits torch.manual_seed's 64 bits", "fix: pick a seed from 0 to 2**64 - 1"),
    case("machine-batch-size-zero", RANGE, "machine", ("--batch-size", "0"), ("batch size", "got 0"),
         "must be a positive integer"),
    case("machine-batch-size-huge", RANGE, "machine", ("--model", "v0", "--batch-size", "99999999"),
         "is more than the 60,000 training images", LIMIT),
    case("tta-target-over-100", RANGE, "tta", ("--target", "101"), ("--target", "got 101"),
         "a test accuracy in percent (0, 100]"),
    case("tta-target-zero", RANGE, "tta", ("--target", "0"), ("--target", "got 0"), "(0, 100]"),
    case("tta-max-epochs-zero", RANGE, "tta", ("--max-epochs", "0"), ("epochs", "got 0"), "must be an integer ≥ 1"),
    case("tta-eval-every-zero", RANGE, "tta", ("--eval-every", "0"), ("--eval-every", "got 0"), "must be ≥ 1"),
    case("tta-eval-from-one", RANGE, "tta", ("--eval-from", "1"), ("--eval-from", "got 1"),
         "a fraction of the budget in [0, 1)"),
    case("reproduce-seeds-zero", RANGE, "reproduce", ("--seeds", "0"), (*SEEDS[:1], "got '0'"), SEEDS[1:]),
    case("reproduce-seeds-repeated", RANGE, "reproduce", ("--seeds", "1,1"), (*SEEDS[:1], "got '1,1'"), SEEDS[1:]),
    case("speedup-seeds-negative", RANGE, "speedup", ("--seeds", "-1"), (*SEEDS[:1], "got '-1'"), SEEDS[1:]),
    case("profile-active-zero", RANGE, "profile", ("--active", "0"), (SCHEDULE[0], "active 0"), SCHEDULE[1]),
    case("profile-wait-negative", RANGE, "profile", ("--wait", "-1"), (SCHEDULE[0], "wait -1"), SCHEDULE[1]),
    case("profile-warmup-zero", RANGE, "profile", ("--warmup", "0"), ("--warmup 0", "the first traced step"),
         "fix: --warmup 1 or more"),
    case("profile-batch-too-large", RANGE, "profile", ("--batch-size", "30000"),
         ("the profiler schedule needs 9 steps", "batch size 30000 gives 2"), "fix: a smaller --batch-size"),
    case("compare-fail-above-negative", RANGE, "compare", ("{run}", "{run}", "--fail-above", "-1"),
         ("--fail-above", "got -1"), "must be a finite number ≥ 0"),
    case("compare-min-effect-inf", RANGE, "compare", ("{run}", "{run}", "--min-effect", "inf"),
         ("--min-effect", "got inf"), "must be a finite number ≥ 0"),
    case("noise-detect-zero", RANGE, "noise", ("{results}", "--detect", "0"),
         ("--detect 0", "must be above 0%"), "fix: e.g. --detect 30"),
    case("noise-too-few-runs", RANGE, "noise", ("{results}",), ("noise needs at least 4 runs", "found 1"),
         ("fix: add 3 more", "--bench-results DIR")),
    case("bench-budget-negative", RANGE, "bench", ("--bench-budget", "-1"), ("--bench-budget", "got '-1'"),
         "takes seconds ≥ 0 (0: no budget)", how="bench"),
    # Text where a number goes, malformed lists
    case("train-batch-size-text", TYPE, "train", ("--batch-size", "abc"),
         "argument --batch-size: expected an integer, got 'abc'", TRAIN_HELP),
    case("train-lr-text", TYPE, "train", ("--lr", "fast"), "argument --lr: expected a number, got 'fast'", TRAIN_HELP),
    case("train-epochs-float", TYPE, "train", ("--epochs", "1.5"), "argument --epochs: expected an integer, got '1.5'",
         TRAIN_HELP),
    case("train-channels-last-value", TYPE, "train", ("--channels-last=yes",), "ignored explicit argument 'yes'",
         TRAIN_HELP),
    case("machine-batch-size-text", TYPE, "machine", ("--batch-size", "many"),
         "argument --batch-size: expected an integer, got 'many'", "see `mnist-bench machine --help`"),
    case("reproduce-seeds-text", TYPE, "reproduce", ("--seeds", "abc"), ("--seeds", "got 'abc'"),
         "takes a count (5 → seeds 0–4) or a comma list (42,0,1)"),
    case("speedup-seeds-text", TYPE, "speedup", ("--seeds", "abc"), ("--seeds", "got 'abc'"),
         "takes a count (5 → seeds 0–4) or a comma list (42,0,1)"),
    case("reproduce-models-empty", TYPE, "reproduce", ("--models", ","), ("--models", "got ','"),
         "needs at least one model name"),
    case("speedup-precision-repeated", TYPE, "speedup", ("--precision", "fp32,fp32"),
         ("--precision", "got 'fp32,fp32'"), "a comma list without repeats, e.g. fp32,bf16"),
    case("tta-target-text", TYPE, "tta", ("--target", "high"), "argument --target: expected a number, got 'high'",
         "see `mnist-bench tta --help`"),
    case("profile-warmup-text", TYPE, "profile", ("--warmup", "abc"), "argument --warmup: expected an integer",
         "see `mnist-bench profile --help`"),
    case("compare-fail-above-text", TYPE, "compare", ("{run}", "{run}", "--fail-above", "lots"),
         "argument --fail-above: expected a number, got 'lots'", "see `mnist-bench compare --help`"),
    case("bench-budget-text", TYPE, "bench", ("--bench-budget", "soon"), ("--bench-budget", "got 'soon'"),
         "takes seconds ≥ 0", how="bench"),
    case("train-model-not-a-module", TYPE, "train", ("--model", "{nets}:NotAModule"),
         "NotAModule is a class but not an nn.Module", "fix: name an nn.Module subclass or a function returning one"),
    case("train-model-instance", TYPE, "train", ("--model", "{nets}:instance"), "instance is an nn.Module instance",
         "fix: name the class (or a factory), not an object"),
    case("train-model-arg-malformed", TYPE, "train", ("--model-arg", "width"),
         ("--model-arg takes key=value", "got 'width'"), "fix: e.g. --model-arg width=64"),
    # Missing, unreadable or the wrong kind of file or folder
    case("train-results-is-a-file", FILE, "train", ("--results", "{file}"), ("notes.txt is not writable",),
         RESULTS[1]),
    case("train-results-under-a-file", FILE, "train", ("--results", "{file}/results"),
         ("notes.txt/results is not writable", "Not a directory"), RESULTS[1]),
    case("train-save-is-a-folder", FILE, "train", ("--save", "{folder}"), ("--save", "is a folder"),
         "fix: give a file name"),
    case("train-save-under-a-file", FILE, "train", ("--save", "{file}/model.pt"), "cannot be created or written",
         "fix: pass --save a path in a writable folder"),
    case("train-data-root-is-a-file", FILE, "train", ("--data-root", "{file}"), (DATA_DIR[0], "Not a directory"),
         DATA_DIR[1]),
    case("train-data-root-corrupt", FILE, "train", ("--data-root", "{bad_data}"),
         ("train-images-idx3-ubyte", SHA[0]), SHA[1]),
    case("data-root-is-a-file", FILE, "data", ("--data-root", "{file}"), DATA_DIR[0], DATA_DIR[1]),
    case("data-root-corrupt", FILE, "data", ("--data-root", "{bad_data}"), ("train-images-idx3-ubyte", SHA[0]),
         SHA[1]),
    case("train-model-file-missing", FILE, "train", ("--model", "{inputs}/missing.py:Net"), "no file",
         "fix: pass path/to/file.py:Name with the path of an existing Python file"),
    case("train-model-module-missing", FILE, "train", ("--model", "nosuchpkg.nets:Net"), "no module 'nosuchpkg'",
         "fix: install it, or pass path/to/file.py:Name"),
    case("train-model-import-fails", FILE, "train", ("--model", "{broken_net}:Net"),
         ("importing", "raised ZeroDivisionError: division by zero"), "fix: make the file import cleanly"),
    case("compare-datasets", FILE, "compare", ("{run}", "{run_fashion}"),
         ("BASE ran on mnist and NEW on fashion-mnist", "do not compare"),
         "fix: compare runs of one data set (--bench-dataset)"),
    case("predict-model-changed", FILE, "predict", ("--checkpoint", "{mine_pt}", "{image}"),
         ("its model's file", "changed since it was trained"),
         "fix: restore the file, or pass --allow-changed-source"),
    case("predict-checkpoint-missing", FILE, "predict", ("--checkpoint", "{inputs}/missing.pt", "{image}"),
         ("missing.pt", "no such file"), SAVE),
    case("predict-checkpoint-is-a-folder", FILE, "predict", ("--checkpoint", "{folder}", "{image}"), "is a folder",
         SAVE),
    case("predict-checkpoint-text", FILE, "predict", ("--checkpoint", "{file}", "{image}"),
         "not a readable checkpoint", SAVE),
    case("predict-checkpoint-plain-torch", FILE, "predict", ("--checkpoint", "{plain_pt}", "{image}"),
         "not an mnist-bench checkpoint", SAVE),
    case("predict-checkpoint-pickle", FILE, "predict", ("--checkpoint", "{pickle}", "{image}"),
         "not a readable checkpoint", SAVE, how="module"),
    case("predict-checkpoint-truncated", FILE, "predict", ("--checkpoint", "{cut_pt}", "{image}"),
         ("cut.pt", "not a readable checkpoint"), SAVE),
    case("predict-checkpoint-other-model", FILE, "predict", ("--checkpoint", "{other_pt}", "{image}"),
         ("other.pt", "its weights do not fit model 'fastnet'"), SAVE),
    case("predict-checkpoint-flag-missing", FILE, "predict", ("{image}",),
         "the following arguments are required: --checkpoint", "see `mnist-bench predict --help`"),
    case("predict-image-argument-missing", FILE, "predict", ("--checkpoint", "{plain_pt}"),
         "the following arguments are required: IMAGE", "see `mnist-bench predict --help`"),
    case("predict-image-missing", FILE, "predict", ("--checkpoint", "{plain_pt}", "{inputs}/missing.png"),
         ("missing.png", "no such file"), IMAGE),
    case("predict-image-is-a-folder", FILE, "predict", ("--checkpoint", "{plain_pt}", "{folder}"), "is a folder",
         IMAGE),
    case("predict-image-not-an-image", FILE, "predict", ("--checkpoint", "{plain_pt}", "{text_png}"),
         ("text.png", "not an image PIL can read"), "fix: pass a PNG, JPEG, BMP or GIF file"),
    case("reproduce-readme-missing", FILE, "reproduce", ("--readme", "{inputs}/README.md"),
         ("--readme", "no such file, or no <!-- seed-table:start -->"), MARKERS),
    case("reproduce-readme-binary", FILE, "reproduce", ("--readme", "{image}"), ("--readme", "digit.png"), MARKERS),
    case("tta-readme-no-markers", FILE, "tta", ("--readme", "{file}"), ("notes.txt", "<!-- tta-table:end -->"),
         MARKERS),
    case("tta-results-is-a-file", FILE, "tta", ("--results", "{file}"), RESULTS[0], RESULTS[1]),
    case("report-missing", FILE, "report", ("{inputs}/missing",), "missing: no such folder", RUN_DIR),
    case("report-file", FILE, "report", ("{file}",), "is a file, not a run folder", RUN_DIR),
    case("report-not-a-run", FILE, "report", ("{folder}",), "is not a benchmark run folder", RUN_DIR),
    case("report-no-latest", FILE, "report", (), "results/latest: no such folder", RUN_DIR),
    case("report-results-folder", FILE, "report", ("{results}",), "is a results folder, not a run",
         ("fix: pass", "latest or one of its <run-id> folders")),
    case("compare-base-missing", FILE, "compare", ("{inputs}/missing", "{run}"), ("BASE", "no such folder"),
         "fix: pass a benchmark run folder"),
    case("compare-base-is-a-file", FILE, "compare", ("{file}", "{run}"), ("BASE", "is a file, not a run folder"),
         "fix: pass results/<run-id>/"),
    case("compare-new-not-a-run", FILE, "compare", ("{run}", "{folder}"), ("NEW", "is not a benchmark run folder"),
         "fix: pass a folder written by `pytest bench --benchmark-only`"),
    case("compare-new-missing", FILE, "compare", ("{run}",), "the following arguments are required: NEW",
         "see `mnist-bench compare --help`"),
    case("compare-nothing", FILE, "compare", ("{empty_run}", "{empty_run}"),
         ("nothing to compare", "has a train or inference row"),
         "fix: pass run folders from a benchmark session that ran cases"),
    case("noise-missing", FILE, "noise", ("{inputs}/missing",), "missing: no such folder", RUN_DIR),
    case("noise-out-is-a-file", FILE, "noise", ("{results}", "--out", "{file}"), ("notes.txt is not writable",),
         "fix: pass --out DIR with a writable folder"),
    case("compare-noise-not-a-table", FILE, "compare", ("{run}", "{run}", "--noise", "{file}"),
         ("--noise", "notes.txt lacks the columns phase"), "fix: pass a noise.csv written by `mnist-bench noise`"),
    case("profile-diff-missing", FILE, "profile", ("--diff", "{inputs}/missing", "{folder}"), "is not a folder",
         PROFILE_DIRS, bare=True),
    case("profile-diff-not-a-profile", FILE, "profile", ("--diff", "{folder}", "{folder}"), "no ops.csv in it",
         PROFILE_DIRS, bare=True),
    case("profile-diff-ops-columns", FILE, "profile", ("--diff", "{bad_ops}", "{bad_ops}"),
         ("bad-ops/ops.csv lacks the columns", "self_cpu_us"), PROFILE_DIRS, bare=True),
    case("profile-results-is-a-file", FILE, "profile", ("--results", "{file}"), RESULTS[0], RESULTS[1]),
    case("bench-readme-missing", FILE, "bench", ("--bench-readme", "{inputs}/README.md"),
         ("--bench-readme", "no such file or no <!-- bench-summary:start -->"),
         "fix: add both markers to the file, or drop --bench-readme", how="bench"),
    case("bench-results-is-a-file", FILE, "bench", ("--bench-results", "{file}"), ("notes.txt is not writable",),
         "fix: pass --bench-results DIR", how="bench"),
    case("bench-data-root-is-a-file", FILE, "bench", ("--bench-data-root", "{file}"), DATA_DIR[0],
         "fix: pass --bench-data-root DIR", how="bench"),
    # A device this machine does not have
    case("train-cuda", DEVICE, "train", ("--device", "cuda"), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("machine-cuda", DEVICE, "machine", ("--device", "cuda"), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("predict-cuda", DEVICE, "predict", ("--device", "cuda", *PREDICT), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("reproduce-cuda", DEVICE, "reproduce", ("--device", "cuda"), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("tta-cuda", DEVICE, "tta", ("--device", "cuda"), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("profile-cuda", DEVICE, "profile", ("--device", "cuda"), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("bench-cuda", DEVICE, "bench", ("--bench-device", "cuda"), ("--bench-device cuda", "no CUDA device"),
         "fix: pass --bench-device cpu, or all", how="bench", needs="no-cuda"),
    # Flags that cannot go together
    case("train-fp16-on-cpu", COMBINATION, "train", ("--precision", "fp16", "--device", "cpu"), *FP16_CPU),
    case("train-cuda-graph-on-cpu", COMBINATION, "train", ("--cuda-graph", "--device", "cpu"),
         "--cuda-graph needs a CUDA device", "fix: drop it on the CPU"),
    case("train-cuda-graph-with-compile", COMBINATION, "train", ("--cuda-graph", "--compile", "default"),
         "cuda_graph and torch.compile both capture the step", "fix: pick one"),
    case("train-cuda-graph-with-fp16", COMBINATION, "train", ("--cuda-graph", "--precision", "fp16"),
         "cuda_graph cannot capture fp16's GradScaler", "fix: use --precision bf16 or fp32 with --cuda-graph"),
    case("speedup-fp16-on-cpu", COMBINATION, "speedup", ("--precision", "fp32,fp16", "--device", "cpu"), *FP16_CPU),
    case("tta-fp16-on-cpu", COMBINATION, "tta", ("--precision", "fp16", "--device", "cpu"), *FP16_CPU),
    case("profile-fp16-on-cpu", COMBINATION, "profile", ("--precision", "fp16", "--device", "cpu"), *FP16_CPU),
    case("profile-variant-cuda-only", COMBINATION, "profile", ("--variant", "cudagraph", "--device", "cpu"),
         ("--variant cudagraph", "runs on CUDA only"), "fix: pick another variant"),
    case("train-seed-and-seeds", COMBINATION, "train", ("--seed", "1", "--seeds", "3"), "--seed and --seeds both given",
         "fix: pass one"),
    case("train-save-and-seeds", COMBINATION, "train", ("--seeds", "3", "--save", "{inputs}/m.pt"),
         "--save keeps one model but --seeds trains several", "fix: drop --save, or pass --seed N"),
    case("profile-variant-inference-only", COMBINATION, "profile", ("--variant", "compile-freeze-bf16"),
         ("--variant compile-freeze-bf16", "inference only"), "fix: pick another variant"),
    # Environment variables pointing nowhere
    case("env-data-is-a-file", ENV, "data", (), DATA_DIR[0], DATA_DIR[1], env=(("MNIST_BENCH_DATA", "{file}"),)),
    case("env-data-under-a-file", ENV, "train", ("--model", "v0", "--loader", "fast", "--epochs", "1", "--results",
                                                 "{results}"), (DATA_DIR[0], "notes.txt/mnist"),
         DATA_DIR[1], env=(("MNIST_BENCH_DATA", "{file}/mnist"),), bare=True),
    case("env-data-corrupt", ENV, "train", ("--model", "v0", "--loader", "fast", "--epochs", "1", "--results",
                                            "{results}"), SHA[0], SHA[1],
         env=(("MNIST_BENCH_DATA", "{bad_data}"),), bare=True),
    case("env-data-unwritable", ENV, "data", (), (DATA_DIR[0], "/proc/mnist-bench"), DATA_DIR[1],
         env=(("MNIST_BENCH_DATA", "/proc/mnist-bench"),), needs="proc"),
    case("env-cache-is-a-file", ENV, "data", (), (DATA_DIR[0], "notes.txt/mnist-bench"), DATA_DIR[1],
         env=(("MNIST_BENCH_DATA", None), ("XDG_CACHE_HOME", "{file}"))),
    case("env-bench-data-is-a-file", ENV, "bench", (), DATA_DIR[0], "fix: pass --bench-data-root DIR (or set "
         "MNIST_BENCH_DATA)", env=(("MNIST_BENCH_DATA", "{file}"),), how="bench"),
    # Models of one's own that cannot be used (NETS), refused before anything is trained or written
    case("train-model-constructor-raises", MODEL, "train", ("--model", "{nets}:Raises"),
         "building it raised RuntimeError: no weights here", "fix: the constructor must work with no arguments"),
    case("train-model-arg-unknown", MODEL, "train", ("--model-arg", "width=3"),
         ("model v0: building it with width=3 raised TypeError", "unexpected keyword argument 'width'"),
         "or pass its arguments as --model-arg key=value"),
    case("train-model-returns-int", MODEL, "train", ("--model", "{nets}:returns_int"),
         "its constructor returned int, not an nn.Module", "fix: return the model"),
    case("train-model-forward-raises", MODEL, "train", ("--model", "{nets}:ForwardRaises"),
         "its forward raised RuntimeError on a (2, 1, 28, 28) batch",
         "fix: take (N, 1, 28, 28) images in [0, 1] and return (N, 10) logits"),
    case("train-model-five-classes", MODEL, "train", ("--model", "{nets}:FiveClasses"),
         "its forward returned torch.float32 (2, 5) for a (2, 1, 28, 28) batch, not (2, 10) float logits",
         "fix: end with a layer of 10 outputs"),
    case("train-model-no-parameters", MODEL, "train", ("--model", "{nets}:NoParams"),
         "it has no float parameters", "fix: give it layers with weights"),
    case("models-five-classes", MODEL, "models", ("{nets}:FiveClasses",), "its forward returned torch.float32 (2, 5)",
         "fix: end with a layer of 10 outputs"),
    case("bench-model-five-classes", MODEL, "bench", ("--bench-models", "{nets}:FiveClasses"),
         ("--bench-models: model", "its forward returned torch.float32 (2, 5)"),
         "fix: end with a layer of 10 outputs", how="bench"),
    # Data sets of one's own (--dataset PATH) that cannot be used, refused before anything is converted or trained
    case("train-data-missing", DATA, "train", ("--dataset", "{inputs}/nowhere/"), "no such folder or .npz file",
         "fix: pass --dataset mnist, fashion-mnist, or the path of a folder or .npz of your own"),
    case("train-data-no-test", DATA, "train", ("--dataset", "{own}/no-test"), "no test/ folder", OWN_FIX),
    case("train-data-label", DATA, "train", ("--dataset", "{own}/bad-label"), "label folder 'cat' is not a digit 0-9",
         OWN_FIX),
    case("train-data-empty-class", DATA, "train", ("--dataset", "{own}/empty-class"), "class 3 has no images",
         "fix: add its images or remove the empty folder"),
    case("train-data-unreadable", DATA, "train", ("--dataset", "{own}/unreadable"),
         ("1.png", "not an image PIL can read"), "fix: replace or remove that file"),
    case("train-data-npz-array", DATA, "train", ("--dataset", "{own}/no-test.npz"), "no x_test or y_test array",
         NPZ_FIX),
    case("train-data-npz-shape", DATA, "train", ("--dataset", "{own}/rgb.npz"), "x_train is uint8 (4, 28, 28, 3)",
         NPZ_FIX),
    case("train-data-npz-label", DATA, "train", ("--dataset", "{own}/label-10.npz"), "y_test holds label 10",
         "fix: labels 0-9 only"),
    case("train-data-npz-lengths", DATA, "train", ("--dataset", "{own}/lengths.npz"),
         "x_train holds 4 images but y_train 3 labels", "fix: give every image one label"),
    case("train-data-not-npz", DATA, "train", ("--dataset", "{file}"), "a file but not an .npz", NPZ_FIX),
    # A sweep's space and study (the database itself: tests/test_sweep.py starts real ones)
    case("sweep-objective", UNKNOWN, "sweep", ("--objective", "speed"), "invalid choice: 'speed'",
         "see `mnist-bench sweep --help`"),
    case("sweep-optimizer-choice", UNKNOWN, "sweep", ("--optimizer", "sgd,rmsprop"),
         ("--optimizer rmsprop", "unknown optimizer 'rmsprop'"), "choose one of: sgd, adam"),
    case("sweep-model-choice", UNKNOWN, "sweep", ("--model", "v2,v9"), "unknown model 'v9'", MODELS),
    case("sweep-storage-scheme", UNKNOWN, "sweep", ("--storage", "mysql://db"), "not a database URL",
         "fix: sqlite:///path/to/file.db or postgresql://user@host:port/dbname"),
    case("sweep-trials-zero", RANGE, "sweep", ("--trials", "0"), "a study needs at least 1 trial",
         "fix: pass --trials 1 or more"),
    case("sweep-range-reversed", RANGE, "sweep", ("--lr", "0.1:0.01"), "LOW must be below HIGH",
         "fix: e.g. --lr 0.01:0.1"),
    case("sweep-log-range-zero", RANGE, "sweep", ("--lr", "0:0.1:log"), "a log range needs LOW > 0",
         "fix: drop :log or raise LOW"),
    case("sweep-range-text", TYPE, "sweep", ("--lr", "1e-3:x"), "not a number",
         "fix: a range is LOW:HIGH or LOW:HIGH:log"),
    case("sweep-batch-size-fraction", TYPE, "sweep", ("--batch-size", "32:64.5"), "not a whole number",
         "fix: give whole numbers"),
    case("sweep-study-name", TYPE, "sweep", ("--study", "my study"), "letters, digits",
         "fix: e.g. --study lr-search"),
    case("sweep-database-down", DATABASE, "sweep", ("--storage", "postgresql://postgres@127.0.0.1:1/postgres",
                                                    "--data-root", "{data}", "--results", "{results}"),
         ("cannot use the study database postgresql://postgres@127.0.0.1:1/postgres", "connection"),
         "fix: check the server is running"),
    # The history index
    case("history-results-is-a-file", FILE, "history", ("{file}",), "is a file, not a results folder",
         "fix: pass the folder that holds the run folders and runs.jsonl"),
    case("history-results-missing", FILE, "history", ("nowhere",), "nowhere: no such folder",
         "fix: pass a results folder (e.g. results), or --db"),
    case("history-db-scheme", UNKNOWN, "history", ("--db", "mysql://db"), "not a database URL",
         "fix: sqlite:///path/to/file.db or postgresql://user@host:port/dbname"),
    case("history-filter-empty", TYPE, "history", ("{results}", "--filter", ""), "--filter is empty",
         "fix: a shell-style pattern"),
    case("history-database-down", DATABASE, "history", ("{results}", "--db",
                                                        "postgresql://postgres@127.0.0.1:1/history"),
         ("cannot use the history database postgresql://postgres@127.0.0.1:1/history", "connection"),
         "fix: check the server is running"),
    case("push-run-missing", FILE, "push", ("nowhere", "--db", "sqlite:///{results}/h.db"), "nowhere: no such folder",
         RUN_DIR),
    case("push-db-missing", UNKNOWN, "push", ("{results}",), "the following arguments are required: --db",
         "see `mnist-bench push --help`"),
    case("export-uri-scheme", UNKNOWN, "export", ("{results}", "--mlflow", "ftp://host"),
         "not an MLflow tracking URI", "fix: http://host:5000 (a tracking server) or sqlite:///path/to/mlflow.db"),
    case("export-mlflow-missing", UNKNOWN, "export", ("{results}",), "the following arguments are required: --mlflow",
         "see `mnist-bench export --help`"),
    case("export-run-missing", FILE, "export", ("nowhere", "--mlflow", "sqlite:///{results}/m.db"),
         "nowhere: no such folder", RUN_DIR),
    case("export-experiment-empty", TYPE, "export", ("{results}", "--mlflow", "sqlite:///{results}/m.db",
                                                    "--experiment", " "), "--experiment is empty",
         "fix: name an experiment"),
    case("export-mlflow-down", DATABASE, "export", ("{results}", "--mlflow", "http://127.0.0.1:1"),
         ("MLflow at http://127.0.0.1:1 refused the export", "Connection refused"), "fix: check --mlflow"),
    case("push-database-down", DATABASE, "push", ("{results}", "--db", "postgresql://postgres@127.0.0.1:1/history"),
         ("cannot use the history database postgresql://postgres@127.0.0.1:1/history", "connection"),
         "fix: check the server is running"),
    case("train-nproc-zero", RANGE, "train", ("--nproc", "0"), "--nproc 0: a number of processes from 1 to 256",
         "fix: --nproc 2"),
    case("train-nproc-and-ddp", COMBINATION, "train", ("--nproc", "2", "--ddp"),
         "--nproc launches the ranks and --ddp is one of them", "fix: pass --nproc N alone"),
    case("train-backend-alone", COMBINATION, "train", ("--backend", "gloo"),
         "--backend and --dist-timeout apply to data-parallel runs", "fix: add --nproc N, or drop them"),
    case("train-nproc-and-seeds", COMBINATION, "train", ("--nproc", "2", "--seeds", "2"),
         "--seeds trains one run after another", "fix: drop one"),
    case("train-nproc-notebook-loader", COMBINATION, "train", ("--nproc", "2", "--loader", "notebook"),
         "data-parallel training shards the fast loader", "fix: drop --loader notebook"),
    case("train-nproc-nccl-on-cpu", DEVICE, "train", ("--nproc", "2", "--backend", "nccl", "--device", "cpu"),
         "--backend nccl runs on CUDA devices only", "fix: use --backend gloo (or auto) on the CPU"),
    case("train-ddp-outside-torchrun", ENV, "train", ("--ddp",), "--ddp runs as one rank of a torchrun job, but "
         "RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not set",
         "fix: `mnist-bench train --nproc N …`"),
    case("profile-nproc-and-diff", COMBINATION, "profile", ("--diff", "missing", "missing", "--nproc", "2"),
         "--diff compares two profile folders and --nproc/--ddp profile a data-parallel run",
         "fix: drop one (profile, then --diff the folders)"),
    case("profile-ddp-outside-torchrun", ENV, "profile", ("--ddp",), "--ddp runs as one rank of a torchrun job, but "
         "RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not set",
         "fix: `mnist-bench profile --nproc N …`, or `torchrun --nproc-per-node N -m mnist_models profile --ddp …`"),
    case("profile-nproc-notebook-variant", COMBINATION, "profile", ("--variant", "notebook-loader", "--nproc", "2"),
         "--variant notebook-loader trains from the notebook's DataLoader, which data-parallel runs do not shard",
         "fix: another --variant, or drop --nproc/--ddp"),
    case("profile-nproc-nccl-on-cpu", DEVICE, "profile", ("--nproc", "2", "--backend", "nccl", "--device", "cpu"),
         "--backend nccl runs on CUDA devices only", "fix: use --backend gloo (or auto) on the CPU"),
    case("scaling-nproc-zero", RANGE, "scaling", ("--nproc", "0"),
         "--nproc takes a comma list of distinct process counts ≥ 1, got '0'", "fix: --nproc 1,2"),
    case("scaling-nproc-text", TYPE, "scaling", ("--nproc", "x"),
         "--nproc takes a comma list of distinct process counts ≥ 1, got 'x'", "fix: --nproc 1,2"),
    case("scaling-steps-zero", RANGE, "scaling", ("--steps", "0"), "--steps 0: a number ≥ 1",
         "fix: --steps 30"),
    case("scaling-nccl-on-cpu", DEVICE, "scaling", ("--backend", "nccl", "--device", "cpu"),
         "--backend nccl runs on CUDA devices only", "fix: use --backend gloo (or auto) on the CPU"),
    case("scaling-cuda", DEVICE, "scaling", ("--device", "cuda"), NO_CUDA[0], NO_CUDA[1], needs="no-cuda"),
    case("bench-ddp-zero", RANGE, "bench", ("--bench-ddp", "0"),
         "--bench-ddp takes a comma list of distinct process counts ≥ 1, got '0'", "fix: --bench-ddp 1,2", how="bench"),
    case("bench-ddp-text", TYPE, "bench", ("--bench-ddp", "x"),
         "--bench-ddp takes a comma list of distinct process counts ≥ 1, got 'x'", "fix: --bench-ddp 1,2", how="bench"),
    case("train-nproc-global-batch", RANGE, "train", ("--nproc", "2", "--batch-size", "40000"),
         "global batch 80,000 (2 processes × batch size 40,000) is more than the 60,000 training images",
         "fix: pass --batch-size from 1 to 30,000"),
    case("scaling-global-batch", RANGE, "scaling", ("--nproc", "1,2", "--batch-size", "40000"),
         "global batch 80,000 (2 processes × batch size 40,000) is more than the 60,000 training images",
         "fix: pass --batch-size from 1 to 30,000"),
]


# --------------------------------------------------------------------------------------------
# The sandbox each case runs in, and what it must look like afterwards


def make_sandbox(root: Path, mnist_root: Path) -> dict[str, str]:
    """The folders and files the cases point at, as the ``{name}`` placeholders of their argv and env."""
    cwd, inputs, results = root / "cwd", root / "inputs", root / "results"
    for folder in (cwd, inputs / "empty", inputs / "bad-ops", inputs / "empty-run", results,
                   inputs / "bad-mnist" / "MNIST" / "raw"):
        folder.mkdir(parents=True)
    lines = (ROOT / "results" / "runs.jsonl").read_bytes().splitlines(keepends=True)[:2]
    (results / "runs.jsonl").write_bytes(b"".join(lines))
    (results / "tta.csv").write_bytes((ROOT / "results" / "tta.csv").read_bytes())
    run = copy_run(COMMITTED_RUNS[0], results)
    (results / "latest").symlink_to(run.name)
    fashion = copy_run(COMMITTED_RUNS[0], inputs)  # the same run, said to be on Fashion-MNIST
    machine = json.loads((fashion / "machine.json").read_text(encoding="utf-8"))
    (fashion / "machine.json").write_text(json.dumps({**machine, "dataset": "fashion-mnist"}), encoding="utf-8")
    (inputs / "notes.txt").write_text("not what was asked for\n", encoding="utf-8")
    (inputs / "text.png").write_text("a text file named .png\n", encoding="utf-8")
    (inputs / "empty-run" / "train.csv").write_text("phase,model,device,variant,batch_size\n", encoding="utf-8")
    (inputs / "bad-ops" / "ops.csv").write_text("name,value\nx,1\n", encoding="utf-8")  # not the profiler's columns
    (inputs / "bad-mnist" / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    Image.new("L", (28, 28), 0).save(inputs / "digit.png")
    torch.save({"weights": torch.zeros(3)}, inputs / "plain.pt")  # a real torch file, not a checkpoint
    real = save_checkpoint(inputs / "v0.pt", get_model("v0"), RunConfig(model="v0"), {})
    (inputs / "cut.pt").write_bytes(real.read_bytes()[:-100])  # a checkpoint cut short
    payload = torch.load(real, weights_only=True) | {"model": "fastnet"}  # V0's weights declared as FastNet,
    torch.save(payload | {"metadata_sha256": metadata_digest(payload)}, inputs / "other.pt")  # hashes consistent
    (inputs / "nets.py").write_text(NETS, encoding="utf-8")
    (inputs / "broken_net.py").write_text("import torch\n1 / 0\n", encoding="utf-8")
    (inputs / "mine.py").write_text(NETS, encoding="utf-8")  # trained from, then changed
    save_checkpoint(inputs / "mine.pt", get_model(f"{inputs}/mine.py:Good"), RunConfig(model=f"{inputs}/mine.py:Good"),
                    {})
    with open(inputs / "mine.py", "a", encoding="utf-8") as f:
        f.write("# changed after training\n")
    make_own_data(inputs / "own")
    with open(inputs / "plain.pkl", "wb") as f:
        pickle.dump({"weights": [0.0, 0.0]}, f, protocol=4)
    paths = {"root": root, "cwd": cwd, "inputs": inputs, "results": results, "run": run, "data": mnist_root,
             "file": inputs / "notes.txt", "folder": inputs / "empty", "image": inputs / "digit.png",
             "text_png": inputs / "text.png", "plain_pt": inputs / "plain.pt", "pickle": inputs / "plain.pkl",
             "cut_pt": inputs / "cut.pt", "other_pt": inputs / "other.pt", "bad_data": inputs / "bad-mnist",
             "bad_ops": inputs / "bad-ops", "empty_run": inputs / "empty-run", "nets": inputs / "nets.py",
             "broken_net": inputs / "broken_net.py", "mine_pt": inputs / "mine.pt", "run_fashion": fashion,
             "own": inputs / "own"}
    return {name: str(path) for name, path in paths.items()}


def make_own_data(own: Path) -> None:
    """Data sets of one's own, each with one thing wrong (``train-data-*`` cases)."""
    digit = Image.new("L", (28, 28), 0)
    for name, folders in (("no-test", ("train/1",)), ("bad-label", ("train/1", "train/cat", "test/1")),
                          ("empty-class", ("train/1", "train/3", "test/1")), ("unreadable", ("train/1", "test/1"))):
        for folder in folders:
            (own / name / folder).mkdir(parents=True)
            if not folder.endswith(("/3", "/cat")):
                digit.save(own / name / folder / "0.png")
    (own / "unreadable" / "train" / "1" / "1.png").write_text("not an image\n", encoding="utf-8")
    x, y = np.zeros((4, 28, 28), np.uint8), np.arange(4)
    np.savez(own / "no-test.npz", x_train=x, y_train=y)
    np.savez(own / "rgb.npz", x_train=np.zeros((4, 28, 28, 3), np.uint8), y_train=y, x_test=x, y_test=y)
    np.savez(own / "label-10.npz", x_train=x, y_train=y, x_test=x, y_test=np.array([0, 1, 2, 10]))
    np.savez(own / "lengths.npz", x_train=x, y_train=y[:3], x_test=x, y_test=y)


def snapshot(root: str) -> dict[str, bytes | str]:
    """Every entry under ``root``: a file's bytes, a link's target, "folder" for a folder."""
    state: dict[str, bytes | str] = {}
    for top, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(top, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = "link to " + os.readlink(path)
            else:
                state[rel] = "folder" if path.is_dir() else path.read_bytes()
    return state


def changes(before: dict[str, bytes | str], after: dict[str, bytes | str]) -> list[str]:
    return sorted(f"{'added' if k not in before else 'removed' if k not in after else 'changed'} {k}"
                  for k in set(before) | set(after) if before.get(k) != after.get(k))


# --------------------------------------------------------------------------------------------
# Running a case


def assert_one_line_usage_error(code: int, stderr: str) -> str:
    """Exit 2 and exactly one non-empty stderr line ``mnist-bench: error: …``; returns that line."""
    assert code == 2, f"exit code {code}, stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{stderr}"
    assert lines[0].startswith("mnist-bench: error: "), lines[0]
    assert len(lines[0]) > len("mnist-bench: error: ")
    return lines[0]


def fill(case: Case, paths: dict[str, str]) -> tuple[list[str], dict[str, str | None]]:
    """The case's argv and environment with the sandbox's paths in place of the placeholders."""
    env = {name: None if value is None else value.format(**paths) for name, value in case.env}
    return [arg.format(**paths) for arg in case.argv()], env


def run_in_process(case: Case, paths: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``cli.main(argv)`` from the sandbox's working directory; a warning the command raised is added
    to stderr as the line a terminal would show (Python's default filters)."""
    argv, env = fill(case, paths)
    monkeypatch.chdir(paths["cwd"])
    monkeypatch.setenv("MNIST_BENCH_DATA", paths["data"])
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", quiet)
        code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)


def run_process(case: Case, paths: dict[str, str]) -> tuple[int, str, str]:
    """The case in a process of its own: the console script, ``python -m mnist_models`` or ``pytest bench``."""
    argv, env = fill(case, paths)
    if case.how != "bench":
        assert not env, "CLI subprocess cases run with run_cli's environment"
        done = run_cli(argv, Path(paths["cwd"]), Path(paths["data"]), module=case.how == "module")
        return done.returncode, done.stdout, done.stderr
    full = {**os.environ, "MNIST_BENCH_DATA": paths["data"], "COLUMNS": "200", **env}
    full = {name: value for name, value in full.items() if value is not None}
    command = [sys.executable, "-m", "pytest", str(ROOT / "bench"), "--benchmark-only", "-p", "no:cacheprovider",
               *argv]
    done = subprocess.run(command, cwd=paths["cwd"], env=full, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    return done.returncode, done.stdout, done.stderr


def skip_reason(case: Case) -> str | None:
    if case.needs == "no-cuda" and torch.cuda.is_available():
        return "this machine has CUDA, so --device cuda is valid here"
    if case.needs == "proc" and not Path("/proc/self").is_dir():
        return "no /proc here (not Linux): no folder that cannot be created even by root"
    return None


@pytest.fixture(scope="module")
def processes(request: pytest.FixtureRequest, mnist_root: Path,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, str], dict, Future]]:
    """The selected cases that run as processes, all started in the background (``WORKERS`` at a time)
    when the first case runs: id → (sandbox, its snapshot before, the future of (exit, stdout, stderr))."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)}
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    request.addfinalizer(lambda: pool.shutdown(wait=True, cancel_futures=True))
    started = {}
    for c in CASES:
        if c.how != "cli" and c.id in selected and skip_reason(c) is None:
            paths = make_sandbox(tmp_path_factory.mktemp(c.id), mnist_root)
            started[c.id] = (paths, snapshot(paths["root"]), pool.submit(run_process, c, paths))
    return started


# In-process cases first: the processes, started by the first case, run in the background meanwhile.
@pytest.mark.parametrize("case", sorted(CASES, key=lambda c: c.how != "cli"), ids=lambda c: c.id)
def test_bad_input(case: Case, processes: dict, mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    if case.how == "cli":
        paths = make_sandbox(tmp_path, mnist_root)
        before = snapshot(paths["root"])
        code, out, err = run_in_process(case, paths, monkeypatch, capsys)
    else:
        paths, before, future = processes[case.id]
        code, out, err = future.result()
    assert "Traceback" not in out + err, out + err
    line = assert_one_line_usage_error(code, err.removeprefix("Exit: ") if case.how == "bench" else err)
    for text in case.problem + case.fix:
        assert text in line, f"{text!r} not in {line!r}"
    assert out.strip() == "", out
    assert changes(before, snapshot(paths["root"])) == []


# --------------------------------------------------------------------------------------------
# The inventory itself, and the doc that lists it


def test_the_inventory_covers_every_command_and_category() -> None:
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)
    assert {c.category for c in CASES} == set(CATEGORIES)
    commands = {c.command for c in CASES} - {"", "frobnicate"}
    assert commands == set(cli.COMMANDS) | {"bench"}, commands ^ (set(cli.COMMANDS) | {"bench"})
    assert all(c.problem and c.fix for c in CASES)
    assert {c.how for c in CASES} == {"cli", "script", "module", "bench"}


TESTED = {"cli": "in-process", "script": "console script", "module": "python -m", "bench": "pytest process"}


def doc_rows() -> list[list[str]]:
    """The table rows of docs/bad-inputs.md: cells unescaped (``\\|`` → ``|``, code spans unwrapped)."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not re.match(r"\| \d+ \|", line):
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append([re.sub(r"^(`+) ?(.*?) ?\1$", r"\2", cell) for cell in cells])
    return rows


def test_the_doc_lists_the_inventory() -> None:
    """docs/bad-inputs.md has one row per case, in order: its number, id, category, a message holding the
    case's problem and fix, exit 2 and how it is tested; so the doc cannot drift from the tests."""
    rows = doc_rows()
    assert [row[1] for row in rows] == [c.id for c in CASES]
    for number, (row, c) in enumerate(zip(rows, CASES, strict=True), start=1):
        index, _, category, command, message, code, tested = row
        assert (index, category, code, tested) == (str(number), c.category, "2", TESTED[c.how]), row
        assert command.startswith("pytest bench" if c.command == "bench" else "mnist-bench") or "=" in command, row
        for text in c.problem + c.fix:
            assert text in message, f"{c.id}: {text!r} not in the doc's {message!r}"
    text = DOC.read_text(encoding="utf-8")
    for category in CATEGORIES:  # the summary's rows per category
        assert f"| {category} | {sum(c.category == category for c in CASES)} |" in text, category
