"""Command-line flags: generated from RunConfig's field metadata (help, choices, unit), plus the
shared ones (``--results``, ``--readme``, ``--json``, ``--seeds``) and the parsing that turns bad
input into one line (``UsageError``, exit 2).

A RunConfig field becomes ``--<field-name>`` (or its metadata's ``flag``) with its help, its
choices and its default in the help text; the value is None unless given, so that a protocol's
defaults apply underneath (``RunConfig.from_protocol`` ignores None).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any

from ..config import RunConfig, protocol_notes
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
