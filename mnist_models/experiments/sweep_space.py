"""A sweep's search space and objective, read from the command line's flags; no torch and no Optuna, so
a bad range or name is refused at once.

Each swept setting is a RunConfig field, given as text:

- ``A:B`` a range (a float field: uniform; an int field: every integer), ``A:B:log`` the same on a log
  scale (``--lr 1e-4:1e-1:log``, ``--batch-size 32:512:log``);
- ``a,b,c`` a choice (``--optimizer sgd,adam``, ``--model v2,fastnet2,mine.py:Net``);
- ``a`` one value, fixed for every trial.

Every bound and choice is checked by building the RunConfig it gives (one line naming the flag and the
fix), so a trial never fails on a value the space allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..config import MEASURED_DEFAULTS, RunConfig
from ..errors import UserError
from ..models.registry import check_name

# The settings a sweep can search; lr, batch size and optimizer are searched unless a flag fixes them.
SWEPT = ("lr", "batch_size", "optimizer", "precision", "model", "augment", "epochs", "label_smoothing",
         "lr_schedule")
DEFAULT_SPACE = {"lr": "1e-3:0.3:log", "batch_size": "64,128,256", "optimizer": "sgd,adam"}
# Settings every trial shares, where no flag names them: the whole split on the device, one-cycle, two epochs.
SWEEP_DEFAULTS: dict[str, Any] = {**MEASURED_DEFAULTS, "model": "v2", "loader": "fast", "lr_schedule": "onecycle",
                                  "epochs": 2}
OBJECTIVES = {  # name → (direction, what it is)
    "accuracy": ("maximize", "test accuracy (%) after the epochs"),
    "time-to-target": ("minimize", "training seconds until an epoch's evaluation reaches --target (inf if none "
                                   "does)"),
    "accuracy-per-second": ("maximize", "test accuracy (%) after the epochs ÷ the training seconds"),
}
FIELD_TYPES = {f.name: str(f.type) for f in fields(RunConfig)}


class SpaceError(UserError, ValueError):
    """A search-space flag that cannot be swept: one line naming the flag and the fix."""


@dataclass(frozen=True)
class Param:
    """One setting of the space: a range (``low``..``high``, ``log``), a choice (``choices``) or one value."""

    name: str  # the RunConfig field
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_int(self) -> bool:
        return "int" in FIELD_TYPES[self.name]

    @property
    def fixed(self) -> Any:
        """The value when the setting is not searched (one choice), else None."""
        return self.choices[0] if len(self.choices) == 1 else None

    def describe(self) -> str:
        if self.choices:
            return ", ".join(map(str, self.choices))
        return f"{self.low:g} to {self.high:g}" + (" (log)" if self.log else "")


def _number(param: str, text: str, is_int: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpaceError(f"{param} {text!r}: not a number; fix: a range is LOW:HIGH or LOW:HIGH:log") from None
    if is_int and value != int(value):
        raise SpaceError(f"{param} {text!r}: not a whole number; fix: give whole numbers for this setting")
    return int(value) if is_int else value


def _value(name: str, text: str) -> Any:
    kind = FIELD_TYPES[name]
    if "int" in kind:
        return int(_number("--" + name.replace("_", "-"), text, True))
    if "float" in kind:
        return _number("--" + name.replace("_", "-"), text, False)
    return text


def parse_param(name: str, text: str) -> Param:
    """``text`` (a range, a choice or one value) as a Param of field ``name``; its values are checked later
    (``check_space``)."""
    flag = "--" + name.replace("_", "-")
    if ":" in text and name != "model":  # a model spec has a colon: file.py:Name
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise SpaceError(f"{flag} {text!r}: a range is LOW:HIGH or LOW:HIGH:log; fix: e.g. {flag} 1e-4:1e-1:log")
        if "str" in FIELD_TYPES[name]:
            raise SpaceError(f"{flag} {text!r}: {flag} takes names, not a range; fix: list them, e.g. a,b")
        is_int = "int" in FIELD_TYPES[name]
        low, high = (_number(flag, part, is_int) for part in parts[:2])
        log = len(parts) == 3
        if not low < high:
            raise SpaceError(f"{flag} {text!r}: LOW must be below HIGH; fix: e.g. {flag} {high}:{low}")
        if log and low <= 0:
            raise SpaceError(f"{flag} {text!r}: a log range needs LOW > 0; fix: drop :log or raise LOW")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SpaceError(f"{flag} {text!r}: bounds must be finite; fix: give finite numbers")
        return Param(name, low, high, log)
    choices = tuple(_value(name, part.strip()) for part in text.split(",") if part.strip())
    if not choices:
        raise SpaceError(f"{flag} {text!r}: no value; fix: a value, a comma list or a range LOW:HIGH")
    if len(set(choices)) != len(choices):
        raise SpaceError(f"{flag} {text!r}: a value is repeated; fix: list each value once")
    return Param(name, choices=choices)


def parse_space(given: dict[str, str | None]) -> tuple[Param, ...]:
    """The space: each swept setting given, and ``DEFAULT_SPACE``'s where not given (pass one value to fix
    one of them)."""
    texts = {**DEFAULT_SPACE, **{name: text for name, text in given.items() if text is not None}}
    return tuple(parse_param(name, texts[name]) for name in SWEPT if name in texts)


def base_config(space: tuple[Param, ...], **fixed: Any) -> RunConfig:
    """The config every trial starts from: ``SWEEP_DEFAULTS``, the fixed settings given, each searched
    setting at its first choice or low bound."""
    first = {p.name: p.choices[0] if p.choices else (int(p.low) if p.is_int else p.low) for p in space}
    return RunConfig.from_protocol(None, **{**SWEEP_DEFAULTS, **{k: v for k, v in fixed.items() if v is not None},
                                            **first})


def check_space(space: tuple[Param, ...], base: RunConfig) -> None:
    """Every bound and choice makes a valid RunConfig (a model name is registered or a file that exists)."""
    for param in space:
        values = param.choices or (param.low, param.high)
        for value in values:
            if param.name == "model":
                check_name(value)
            try:
                base.with_(**{param.name: int(value) if param.is_int else value})
            except UserError as exc:
                raise SpaceError(f"{param.flag} {value}: {exc}") from None


def direction(objective: str) -> str:
    """"maximize" or "minimize" for an objective name (a SpaceError naming the known ones otherwise)."""
    if objective not in OBJECTIVES:
        raise SpaceError(f"unknown objective {objective!r}; fix: pass --objective with one of: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[objective][0]
