"""What a benchmark run folder's files must hold, and the ONE place they are checked: the report and
``compare`` read a folder through ``runs.folder`` (its files through ``runs.files``), which hands each
table and machine.json to ``check_table`` / ``check_machine`` here; no renderer checks a column again.

Per file (``SCHEMAS``): the columns it needs, those that must hold numbers, those that must not be
empty, those that come only together, the range of a few values and the registry names. A problem is
said with its file and line as an editor shows them (the header is line 1), and handled as a user
would want:

- a needed column is missing: ``RunFileError`` (one line, the command exits 2) for the tables a report
  is made of (train, inference, time to accuracy); the auxiliary ones (rounds, confusion, predictions,
  scaling) are left out with a warning (``Problem``), as if not recorded;
- a value that is not a number, an empty key, a value out of range, a row of another phase: that row is
  skipped, with a warning;
- an unknown model, variant or device (a typo, or a newer version's model): the rows are kept as
  recorded, with one warning per name;
- machine.json: a value of the wrong type is left out with a warning; a ``format`` newer than
  ``RUN_FORMAT`` stops (the folder was written by a newer version).

``RUN_FORMAT`` is written by ``runs.writer`` into machine.json and every cases.jsonl row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import DEPRECATED
from ..models import entry_points, is_spec, list_models
from ..variants import RENAMED_VARIANTS, VARIANTS
from .paths import CASES_FILE as CASES_FILE  # a name of the run format, kept where readers look

RUN_FORMAT = 1  # a run folder's format: machine.json's and every cases.jsonl row's ``format``; readers refuse higher
FIX = "fix: restore the file as the suite wrote it, or rerun the suite"
NEWER_FIX = "fix: read it with the newer mnist-bench that wrote it (update this checkout, then pip install -e .)"
# Names older runs wrote, read as today's: "seed" is the RNG seed only, the notebook's loader is "notebook".
RENAMED = {"variant": RENAMED_VARIANTS, "loader": {old: new for (field, old), new in DEPRECATED.items()
                                                  if field == "loader"}}
LISTED = 5  # line numbers named in one warning before "and N more"


@dataclass(frozen=True)
class Problem:
    """One problem in a run file, and what was done about it: ``file`` (its name in the run folder),
    ``line`` (as an editor shows it; None for the whole file), ``text``."""

    file: str
    line: int | None
    text: str
    rows: tuple[dict[str, Any], ...] = field(default=(), compare=False)  # the rows skipped, as read

    def say(self, folder: Any = None) -> str:
        """``file:line: text``; the file's full path when ``folder`` is given."""
        name = str(folder / self.file) if folder is not None else self.file
        return f"{name}:{self.line}: {self.text}" if self.line else f"{name}: {self.text}"


class RunFileError(ValueError):
    """A run file the command cannot go on without: the ``problem`` (file, line, what) and the ``fix``;
    ``say`` makes the one line."""

    def __init__(self, problem: Problem, fix: str = FIX) -> None:
        super().__init__(f"{problem.say()}; {fix}")
        self.problem, self.fix = problem, fix

    def say(self, folder: Any = None) -> str:
        """The one line, with the file's full path when ``folder`` is given."""
        return f"{self.problem.say(folder)}; {self.fix}"


@dataclass(frozen=True)
class Schema:
    """What one table must hold (see the module's docstring for what happens when it does not)."""

    required: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    filled: tuple[str, ...] = ()  # no empty cell
    together: tuple[tuple[str, ...], ...] = ()  # present all or none, columns and values (read as a group)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    booleans: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()  # read as text whatever they look like (a commit of digits only)
    lists: tuple[str, ...] = ()  # lists of numbers (a CSV cell holds the list's JSON text)
    phase: str | None = None  # the ``phase`` every row must have
    essential: bool = False  # a missing column stops the command (else the file is left out)


KEYS = ("model", "device", "variant")
TIMES = ("batch_size", "warmup_rounds", "n", "median_s", "iqr_s", "min_s", "max_s", "mean_s", "img_per_s",
         "compile_s", "graph_breaks", "seed", "flops_per_image", "gflop_per_s", "peak_gflop_per_s", "pct_of_peak",
         "peak_allocated_mib", "peak_reserved_mib", "peak_rss_mib", "peak_rss_growth_mib", "process_cpu_util",
         "machine_busy_cores", "torch_threads", "speedup_vs_eager")
BATCH = {"batch_size": (1, 1e7)}  # a case's key: a whole number it must be able to hold
ENV_TEXTS = ("cpu", "cpu_isa", "cpu_capability", "cpu_vendor", "machine_kind", "gpu", "gpu_capability", "cuda", "torch",
             "git_commit", "precision", "auto_reason", "cut")
SCHEMAS = {
    "train.csv": Schema(
        required=("phase", *KEYS, "batch_size", "median_s", "img_per_s", "test_acc_pct", "noisy"),
        numeric=(*TIMES, "steps_per_round", "images_per_round", "train_loss", "test_acc_pct", "test_loss",
                 "test_images", "band_min_acc_pct", "band_max_acc_pct", "band_n", "ref_acc_pct",
                 "ref_band_min_acc_pct", "ref_band_max_acc_pct", "ref_band_n", "acc_delta_vs_eager_pct",
                 "std_s", "ci_low_s", "ci_high_s",
                 *(f"{p}band_{s}_acc_pct" for p in ("", "ref_") for s in ("mean", "std", "ci_low", "ci_high"))),
        filled=("phase", *KEYS), phase="train", essential=True, texts=ENV_TEXTS, ranges=BATCH,
        together=(("precision", "channels_last"), ("band_min_acc_pct", "band_max_acc_pct", "band_n"),
                  ("ref_acc_pct", "ref_band_min_acc_pct", "ref_band_max_acc_pct"))),
    "inference.csv": Schema(
        required=("phase", *KEYS, "batch_size", "median_s", "img_per_s", "noisy"),
        numeric=(*TIMES, "p50_ms", "p90_ms", "p99_ms", "agree_with_eager_pct", "agree_images", "weight_steps",
                 "bytes_per_image", "gb_per_s", "peak_gb_per_s", "pct_of_bandwidth"),
        filled=("phase", *KEYS, "batch_size", "median_s", "img_per_s"), phase="inference", essential=True,
        texts=ENV_TEXTS, ranges=BATCH,
        together=(("precision", "channels_last"),)),
    "tta.csv": Schema(
        required=("model", "device", "seed", "reached"), booleans=("reached",), filled=("model", "device"),
        numeric=("seed", "batch_size", "epochs", "eval_every", "eval_from", "evaluations", "from_first_step_s",
                 "from_start_s", "label_smoothing", "max_epochs", "max_lr", "setup_s", "steps", "target_pct",
                 "test_acc_pct", "auto_probe_s", "startup_data_s", "startup_dynamo_import_s", "startup_model_s",
                 "startup_python_s", "startup_torch_import_s", "cli_help_s", "cli_help_min_s",
                 "cli_help_max_s", "cli_help_n"), essential=True),
    "rounds.csv": Schema(required=("phase", *KEYS, "batch_size", "seconds"), filled=("phase", *KEYS, "seconds"),
                         numeric=("batch_size", "round", "seconds", "train_loss"),
                         ranges={**BATCH, "seconds": (0, 1e6)}),
    # the class indices size the matrix: a hand-edited 10⁹ must not allocate it
    "confusion.csv": Schema(required=("model", "device", "true", "predicted", "count"),
                            numeric=("true", "predicted", "count", "weight_steps"),
                            filled=("model", "device", "true", "predicted", "count"),
                            ranges={"true": (0, 999), "predicted": (0, 999), "count": (0, 1e9)}),
    # the report draws these images from MNIST's 10,000 test images
    "predictions.csv": Schema(required=("model", "device", "index", "label", "predicted", "probability"),
                              numeric=("index", "label", "predicted", "probability", "weight_steps"),
                              filled=("model", "device", "index", "label", "predicted", "probability"),
                              ranges={"index": (0, 9_999), "label": (0, 9), "predicted": (0, 9),
                                      "probability": (0, 1)}),
    # one row per data-parallel layout (--bench-ddp): what report.scaling_table's table and figure read
    "scaling.csv": Schema(
        required=("model", "device", "precision", "channels_last", "backend", "batch_size", "layout", "role",
                  "global_batch", "warmup_steps", "steps", "rounds", "global_steps", "img_per_s", "img_per_s_min",
                  "img_per_s_max", "rank_img_per_s", "step_ms", "efficiency", "vs_all_threads", "profiled_steps",
                  "profiled_step_ms", "allreduce_pct", "test_acc_pct"),
        numeric=("batch_size", "lr", "cores", "nproc", "threads_per_rank", "global_batch", "warmup_steps", "steps",
                 "rounds", "global_steps", "images_per_round", "img_per_s", "img_per_s_min", "img_per_s_max",
                 "rank_img_per_s", "step_ms", "test_acc_pct", "test_loss", "train_loss", "profiled_steps",
                 "profiled_step_ms", "allreduce_ms_per_step", "allreduce_pct", "efficiency", "vs_all_threads"),
        filled=("model", "device", "layout", "role", "img_per_s"), booleans=("channels_last",), lists=("round_s",),
        texts=("precision", "backend", "layout", "role", "optimizer", "auto_reason", "note", "profile"),
        ranges={"nproc": (1, 1e5), "threads_per_rank": (1, 1e5)}),
}
# machine.json: keys whose value must have a type the report formats (else left out, with a warning)
MACHINE_NUMBERS = ("budget_s", "session_s", "inductor_warmup_s", "cpu_count", "torch_threads")
MACHINE_LISTS = ("models", "devices", "variants", "skips", "left_out", "cuts")
MACHINE_NUMBER_MAPS = ("matmul_peak_gflop_per_s", "matmul_peak_size", "memory_bandwidth_gb_per_s", "cache_kib")
MACHINE_TEXTS = ("dataset", "cpu", "cpu_isa", "cpu_capability", "cpu_vendor", "machine_kind", "gpu", "gpu_capability",
                 "cuda", "torch", "git_commit", "profile", "onednn_max_isa", "platform", "python", "host_allocator")


def known_names() -> dict[str, list[str]]:
    """The names this version knows, per column (models: the built-ins and installed packages' models; a
    model of your own, ``file.py:Name``, is known by its form)."""
    return {"model": list_models() + list(entry_points()), "variant": list(VARIANTS), "device": ["cpu", "cuda"]}


def _lines(numbers: Sequence[int]) -> str:
    more = len(numbers) - LISTED
    return ", ".join(map(str, numbers[:LISTED])) + (f" and {more} more" if more > 0 else "")


def _missing_columns(schema: Schema, columns: Any) -> list[str]:
    missing = [c for c in schema.required if c not in columns]
    for group in schema.together:
        if any(c in columns for c in group):
            missing += [c for c in group if c not in columns and c not in missing]
    return missing


def is_number(value: Any) -> bool:
    """A number, or text that reads as one (not a boolean)."""
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def number_list(value: Any) -> list[float] | None:
    """A list of numbers, or the JSON text of one, as floats; None when it is neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list) or not all(is_number(v) and not isinstance(v, str) for v in value):
        return None
    return [float(v) for v in value]


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value).strip() == ""


def _row_problems(schema: Schema, row: dict[str, Any]) -> list[str]:
    """Why one row cannot be used (empty when it can)."""
    why = [f"no {column}" for column in schema.filled if _empty(row.get(column))]
    for column in schema.numeric:
        value = row.get(column)
        if not _empty(value) and not is_number(value):
            why.append(f"{column} {value!r} is not a number")
        elif column in schema.ranges and not _empty(value):
            low, high = schema.ranges[column]
            if not low <= float(value) <= high:
                why.append(f"{column} {value!r} is outside {low:g}–{high:g}")
    for group in schema.together:  # the renderers read a group whole: a partly empty one is unusable
        given = [c for c in group if not _empty(row.get(c))]
        if given and len(given) < len(group):
            why.append(f"no {', '.join(c for c in group if c not in given)} beside {given[0]}")
    why += [f"{column} {row[column]!r:.40} is not a list of numbers" for column in schema.lists
            if not _empty(row.get(column)) and number_list(row[column]) is None]
    for column in schema.booleans:
        if column in row and str(row[column]) not in ("True", "False"):
            why.append(f"{column} {row[column]!r} is not True or False")
    if schema.phase and "phase" in row and not _empty(row["phase"]) and row["phase"] != schema.phase:
        why.append(f"phase {row['phase']!r} where this file holds {schema.phase!r} rows")
    return list(dict.fromkeys(why))


def _typed(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Numeric columns as numbers, text as text and flags as booleans, once the rows that are neither are gone."""
    for column in schema.numeric:
        if column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
            values = frame[column].map(lambda v: None if _empty(v) else v.strip() if isinstance(v, str) else v)
            try:  # keeps whole numbers whole
                frame[column] = pd.to_numeric(values.astype(object))
            except (TypeError, ValueError):  # what float() reads and pandas does not ("1_000")
                frame[column] = pd.to_numeric(values.map(lambda v: None if v is None else float(v)).astype(object))
    for column in schema.texts:
        if column in frame and not pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v if _empty(v) else str(v))
    for column in schema.booleans:
        if column in frame and not pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: str(v) == "True").astype(bool)
    for column in schema.lists:
        if column in frame:
            frame[column] = frame[column].map(lambda v: None if _empty(v) else number_list(v)).astype(object)
    return frame


def _unknown_names(name: str, frame: pd.DataFrame, lines: list[int], problems: list[Problem]) -> None:
    """One warning per name this version does not know; the rows are kept."""
    for column, known in known_names().items():
        if column not in frame:
            continue
        found: dict[str, list[int]] = {}
        for value, line in zip(frame[column], lines, strict=True):
            if str(value) not in known and not (column == "model" and is_spec(str(value))):
                found.setdefault(str(value), []).append(line)
        for value, at in found.items():
            also = f"; also on lines {_lines(at[1:])}" if len(at) > 1 else ""
            problems.append(Problem(name, at[0], f"unknown {column} {value!r} (this version knows "
                                                  f"{', '.join(known)}); its rows are kept as recorded{also}"))


def check_table(name: str, frame: pd.DataFrame, lines: list[int], problems: list[Problem], source: str = ""
                ) -> pd.DataFrame | None:
    """``frame`` (the rows of table ``name``, read from line ``lines[i]`` of ``source``, default ``name``)
    with the rows that cannot be used dropped and said in ``problems``; None when nothing usable is left
    of the file (said too). A missing column of an essential table: ``RunFileError``."""
    schema, source = SCHEMAS[name], source or name
    from_rows = source != name  # rows of cases.jsonl: a column no row has is not recorded
    if frame.empty:
        problems.append(Problem(source, 2, "a header and no rows; treated as not recorded"))
        return None
    missing = _missing_columns(schema, frame.columns)
    if missing and from_rows:  # a key no row has (a failed case's row holds no times): not recorded
        frame = frame.assign(**{column: None for column in missing})
    elif missing:
        said = f"the header has no column {', '.join(repr(c) for c in missing)}"
        if schema.essential:
            raise RunFileError(Problem(source, 1, said))
        problems.append(Problem(source, 1, f"{said}; the file is left out, as if not recorded"))
        return None
    keep, skipped = [], {}  # rows skipped for the same reason (a column emptied) are one problem
    for position, row in enumerate(frame.to_dict("records")):
        why = "; ".join(_row_problems(schema, row))
        if why:
            skipped.setdefault(why, []).append((lines[position], row))
        keep.append(not why)
    for why, found in skipped.items():
        also = f" (also lines {_lines([line for line, _ in found[1:]])})" if len(found) > 1 else ""
        problems.append(Problem(source, found[0][0], f"{why}; row skipped{also}", tuple(r for _, r in found)))
    frame = frame[keep].reset_index(drop=True)
    lines = [line for line, kept in zip(lines, keep, strict=True) if kept]
    if frame.empty:
        problems.append(Problem(source, None, "no usable row left; treated as not recorded"))
        return None
    frame = renamed(frame)
    _unknown_names(source, frame, lines, problems)
    return _typed(frame, schema)


def renamed(frame: pd.DataFrame) -> pd.DataFrame:
    """Values written under an old name read under today's (``RENAMED``): an older run compares with a new one."""
    changes = {column: names for column, names in RENAMED.items() if column in frame}
    return frame.assign(**{c: frame[c].replace(names) for c, names in changes.items()}) if changes else frame


def _json_line(text: str, key: str) -> int | None:
    """The line of ``"key":`` in a JSON text (None when it is not there)."""
    needle = f'"{key}"'
    return next((n for n, line in enumerate(text.split("\n"), start=1) if needle in line), None)


def check_format(value: Any, file: str, line: int | None) -> None:
    """A folder's format, found in ``file`` at ``line``: absent (older versions) or a whole number up to
    ``RUN_FORMAT``; else ``RunFileError``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise RunFileError(Problem(file, line, f"format {value!r} is not a whole number"))
    if value > RUN_FORMAT:
        raise RunFileError(Problem(file, line, f"this run folder has format {value}, newer than this mnist-bench "
                                               f"reads (up to {RUN_FORMAT})"), NEWER_FIX)


def check_machine(machine: Any, text: str, problems: list[Problem]) -> dict[str, Any]:
    """machine.json's object with the values of a wrong type left out (said in ``problems``); not an
    object, or a newer format: ``RunFileError``."""
    if not isinstance(machine, dict):
        raise RunFileError(Problem("machine.json", 1, f"a JSON {type(machine).__name__}, not an object"))
    check_format(machine.get("format"), "machine.json", _json_line(text, "format") or 1)
    machine = dict(machine)
    for key in (*MACHINE_NUMBERS, *MACHINE_TEXTS, *MACHINE_LISTS, *MACHINE_NUMBER_MAPS):
        value = machine.get(key)
        if value is None:
            continue
        if key in MACHINE_NUMBERS:
            ok, kind = is_number(value) and not isinstance(value, str), "a number"
        elif key in MACHINE_TEXTS:
            ok, kind = isinstance(value, str), "text"
        elif key in MACHINE_LISTS:
            ok, kind = isinstance(value, list), "a list"
        else:
            ok = isinstance(value, dict) and all(is_number(v) and not isinstance(v, str) for v in value.values())
            kind = "an object of numbers"
        if not ok:
            problems.append(Problem("machine.json", _json_line(text, key),
                                    f"{key} is {value!r:.60}, not {kind}; left out, as if not recorded"))
            del machine[key]
    for key in ("skips", "left_out"):  # lists of objects: an entry that is not one is dropped
        if isinstance(machine.get(key), list):
            machine[key] = [entry for entry in machine[key] if isinstance(entry, dict)]
    return machine
