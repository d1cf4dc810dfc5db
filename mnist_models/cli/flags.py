"""Command-line flags: generated from RunConfig's field metadata (help, choices, unit), plus the
shared ones (``--results``, ``--readme``, ``--json``, ``--seeds``, the data-parallel ``--nproc``/``--ddp``/
``--backend``/``--dist-timeout`` of ``train`` and ``profile``) and the parsing that turns bad input into
one line (``UsageError``, exit 2).

A RunConfig field becomes ``--<field-name>`` (or its metadata's ``flag``) with its help, its
choices and its default in the help text; the value is None unless given, so that a protocol's
defaults apply underneath (``RunConfig.from_protocol`` ignores None).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any

from ..config import BACKENDS, RunConfig, protocol_notes
from ..data.inputs import check_dataset
from ..errors import UserError
from ..report.markers import has_markers

FIELDS = {f.name: f for f in fields(RunConfig)}


class UsageError(UserError):
    """Bad input from the user; reported as one line with exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def float_arg(text: str) -> float:
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
        raise UsageError(f"--seeds needs at least one seed and no repeats, got {text!r}; fix: a count ≥ 1 "
                         "(5 → seeds 0–4) or a comma list of distinct seeds (42,0,1)")
    return seeds


def config_help(name: str, default: Any = MISSING, note: str = "") -> str:
    """The help text of a RunConfig field: its phrase, choices, unit and default (``default`` overrides
    the field's own, for commands whose recipe differs; ``note`` is added after it)."""
    meta = FIELDS[name].metadata
    text = meta["help"]
    if meta["unit"]:
        text += f" ({meta['unit']})"
    default = FIELDS[name].default if default is MISSING else default
    if default not in (None, ()) and not isinstance(default, bool):
        text += f"; default {default:g}" if isinstance(default, float) else f"; default {default}"
    return (text + (f"; {note}" if note else "")).replace("%", "%%")  # argparse formats help with %


def add_config_flags(parser: argparse.ArgumentParser, names: Iterable[str], defaults: dict[str, Any] | None = None,
                     notes: dict[str, str] | None = None, flags: dict[str, str] | None = None) -> None:
    """Add a flag for each named RunConfig field (value None unless given). ``defaults``: the defaults
    this command's help states, where they are not the field's; ``notes``: extra help per field;
    ``flags``: flag names other than ``--<field-name>``."""
    defaults, notes, flags = defaults or {}, notes or {}, flags or {}
    for name in names:
        spec = FIELDS[name]
        flag = flags.get(name) or spec.metadata["flag"] or "--" + name.replace("_", "-")
        help_text = config_help(name, defaults.get(name, MISSING), notes.get(name) or protocol_notes(name))
        kind = str(spec.type)
        if "bool" in kind:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif "int" in kind:
            parser.add_argument(flag, dest=name, type=int_arg, default=None, metavar="N", help=help_text)
        elif "tuple" in kind:  # a repeated flag: each use adds one value
            parser.add_argument(flag, dest=name, action="append", default=None, metavar="KEY=VALUE", help=help_text)
        elif "float" in kind:
            parser.add_argument(flag, dest=name, type=float_arg, default=None, metavar="X", help=help_text)
        else:  # the choices show in the usage line; RunConfig checks the value (one line naming the setting)
            choices = spec.metadata["choices"]
            metavar = "|".join(choices) if choices else ("DIR" if name == "data_root" else name.upper())
            parser.add_argument(flag, dest=name, default=None, metavar=metavar, help=help_text)


def check_given_files(args: argparse.Namespace) -> None:
    """The files a shared flag names, checked before the command runs (and before torch is imported):
    ``--dataset`` a built-in name or an existing folder or .npz. A command's own files (``predict``'s
    image and checkpoint, ``train --save``) are checked by its command module."""
    if getattr(args, "dataset", None) is not None:
        check_dataset(args.dataset)


DATABASE_URL = re.compile(r"^(sqlite:///.+|postgresql(\+[a-z0-9]+)?://.+)$")  # SQLite files, PostgreSQL servers


def check_database_url(flag: str, url: str | None) -> None:
    """A database URL this harness can use (``sqlite:///…`` or ``postgresql://…``), else one line."""
    if url is not None and not DATABASE_URL.match(url):
        raise UsageError(f"{flag} {url!r}: not a database URL mnist-bench can use; fix: sqlite:///path/to/file.db "
                         "or postgresql://user@host:port/dbname")


def config_values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The RunConfig settings the user gave (None where not given)."""
    return {name: getattr(args, name) for name in names}


def add_results(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", metavar="DIR", default="results",
                        help="results folder; epoch rows are appended to DIR/runs.jsonl (default: results)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def add_readme(parser: argparse.ArgumentParser, marker: str) -> None:
    parser.add_argument("--readme", metavar="FILE",
                        help=f"also replace this machine kind's block between <!-- {marker}:start/end --> in FILE")


def check_readme(readme: str | None, marker: str) -> None:
    """Stop with one line, before any work, when ``--readme`` lacks the markers it would be spliced into."""
    if readme and not has_markers(readme, marker):
        raise UsageError(f"--readme {readme}: no such file, or no <!-- {marker}:start --> / "
                         f"<!-- {marker}:end --> markers in it; fix: add both markers to the file, or drop --readme")


MAX_NPROC = 256  # processes on one machine
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # a rank's


def add_dist_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The data-parallel flags (torch.distributed, DistributedDataParallel) of a command that trains:
    ``--nproc N``, ``--ddp``, ``--backend``, ``--dist-timeout``; ``check_dist`` checks them."""
    group = parser.add_argument_group("data-parallel (torch.distributed, DistributedDataParallel; "
                                      "docs/distributed.md)")
    group.add_argument("--nproc", type=int_arg, metavar="N", help="run on N processes of this machine, launched "
                       "by torch.distributed.run (torchrun) standalone; --batch-size is per process, the global "
                       "batch N times it; each process gets cores/N threads and a shard of the fast loader")
    group.add_argument("--ddp", action="store_true", help="run as one rank of a job torchrun started: `torchrun "
                       f"--nproc-per-node N [--nnodes …] -m mnist_models {command} --ddp …`; rank 0 alone writes")
    group.add_argument("--backend", choices=BACKENDS, default=None,
                       help="torch.distributed backend; default auto: nccl on CUDA, gloo on the CPU")
    group.add_argument("--dist-timeout", type=float_arg, metavar="S", help="seconds a collective waits for "
                       "the other ranks before the job ends (a hung rank); default 120")


def distributed(args: argparse.Namespace) -> bool:
    """Whether the command line asks for a data-parallel run (``--nproc N`` or ``--ddp``)."""
    return args.nproc is not None or args.ddp


def check_dist(args: argparse.Namespace) -> None:
    """The data-parallel flags (``add_dist_flags``), refused before anything runs when they cannot go
    together, or ``--ddp`` outside a torchrun job."""
    if args.nproc is not None and not 1 <= args.nproc <= MAX_NPROC:
        raise UsageError(f"--nproc {args.nproc}: a number of processes from 1 to {MAX_NPROC}; fix: --nproc 2")
    if args.nproc is not None and args.ddp:
        raise UsageError("--nproc launches the ranks and --ddp is one of them; fix: pass --nproc N alone (or run "
                         "--ddp under torchrun)")
    if not distributed(args) and (args.backend is not None or args.dist_timeout is not None):
        raise UsageError("--backend and --dist-timeout apply to data-parallel runs; fix: add --nproc N, or drop them")
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if args.ddp and missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(f"--ddp runs as one rank of a torchrun job, but {', '.join(missing)} {verb} not set; fix: "
                         f"`mnist-bench {args.command} --nproc N …`, or `torchrun --nproc-per-node N -m mnist_models "
                         f"{args.command} --ddp …`")
    if args.dist_timeout is not None and not 0 < args.dist_timeout < float("inf"):
        raise UsageError(f"--dist-timeout {args.dist_timeout:g}: seconds > 0; fix: --dist-timeout 120")
