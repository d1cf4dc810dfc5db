"""How trustworthy is the gate? Runs of unchanged code (A/A) on one machine, every pair compared.

``study(runs)`` takes run folders of one code version and machine kind, oldest first, and measures:

- the **within-run gate** (``compare`` as it judges a pair of runs today: the rounds of each run as
  samples): per pair, the rows it calls slower or faster (false alarms: the code did not change), the
  rows it gates, and whether the pair fails the gate; and which cases cause them;
- the **between-run rule** (``measure.between_runs``): each case's noise σ learned from the *other* runs (the
  pair judged is left out, so the rates are not flattered by having seen it), the same pair judged on
  its levels; and planted slowdowns (one case's NEW time × ``factor``) caught or not.

The rows of the tables it returns are what ``docs/compare.md`` and the ``noise`` command report.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ...measure.between_runs import KNOWN, judge, moderated, pooled_sigma, runs_needed
from ...runs.folder import RunFolder
from ...runs.keys import Key
from ...runs.noise_table import noise_class
from .noise_rule import class_sigmas, side_levels
from .thresholds import gates_time, time_verdict, unequal_work
from .verdicts import Thresholds, compare

PLANTED = (1.3, 1.1)  # the slowdown the gate must catch, and one it reports but does not gate


RECIPE_SPLITS = 20  # random BASE / NEW splits of the runs judged for the several-runs-a-side recipe
HOURS_APART = 1.0  # pairs of runs started this many hours apart or more are "hours apart", others back to back


@dataclass(frozen=True)
class Study:
    """``pairs``: one row per (pair, rule) with the flagged and gated row counts and whether the gate
    failed; ``alarms``: one row per false alarm (pair, rule, case, its change); ``planted``: one row per
    (pair, case, factor) with whether the between-run rule reported and gated it; ``sigma``: each case's
    noise from all the runs."""

    pairs: pd.DataFrame
    alarms: pd.DataFrame
    planted: pd.DataFrame
    sigma: pd.DataFrame
    recipe: pd.DataFrame = field(default_factory=pd.DataFrame)


def levels(runs: Sequence[RunFolder]) -> dict[Key, list[float]]:
    """Each case's level (ln median time per image) in every run, for the cases every run has soundly."""
    found = {key: side_levels(runs, key) for key in runs[0].rows}
    return {key: values for key, values in found.items() if len(values) == len(runs)}


def _describe(key: Key, run: RunFolder) -> dict[str, object]:
    phase, model, device, variant, batch = key
    row = run.rows.get(key, {})
    return {"phase": phase, "model": model, "device": device, "variant": variant, "batch_size": batch,
            "compiled": "compile" in variant, "cut": bool(str(row.get("cut") or "").strip() not in ("", "nan"))}


def apart(a: RunFolder, b: RunFolder) -> str:
    """"back to back" or "hours apart" (``HOURS_APART``), by the runs' start times."""
    if a.started is None or b.started is None:
        return "start unknown"
    hours = abs((b.started - a.started).total_seconds()) / 3600.0
    return "hours apart" if hours >= HOURS_APART else "back to back"


def _within_run(runs: Sequence[RunFolder], th: Thresholds) -> tuple[list[dict], list[dict]]:
    pairs, alarms = [], []
    for i, j in itertools.combinations(range(len(runs)), 2):
        rows = compare(runs[i], runs[j], th).rows
        flagged = [r for r in rows if r["verdict"] in ("slower", "faster")]
        gated = [r for r in rows if r["regressions"]]
        pairs.append({"base": i, "new": j, "rule": "within-run", "apart": apart(runs[i], runs[j]),
                      "rows": len(rows), "flagged": len(flagged),
                      "gated": len(gated), "failed": bool(gated)})
        for r in flagged:
            key = (r["phase"], r["model"], r["device"], r["variant"], r["batch_size"])
            alarms.append({"base": i, "new": j, "rule": "within-run", **_describe(key, runs[j]),
                           "change_pct": r["time_change_pct"], "gated": bool(r["regressions"])})
    return pairs, alarms


def _learned(found: dict[Key, list[float]], leave_out: tuple[int, ...]) -> dict[Key, tuple[float, int]]:
    """Each case's σ and degrees of freedom from the runs not left out, moderated by its class's."""
    others = {key: [v for k, v in enumerate(values) if k not in leave_out] for key, values in found.items()}
    pooled = class_sigmas({key: [values] for key, values in others.items()})
    return {key: moderated(*pooled_sigma([values]), pooled[noise_class(key)]) for key, values in others.items()}


def _between_run(runs: Sequence[RunFolder], found: dict[Key, list[float]], th: Thresholds,
                 detect_pct: float) -> tuple[list[dict], list[dict], list[dict]]:
    pairs, alarms, planted = [], [], []
    for i, j in itertools.combinations(range(len(runs)), 2):
        flagged = gated = 0
        for key, (sigma, dof) in _learned(found, (i, j)).items():
            if math.isnan(sigma):
                continue
            values = found[key]
            unequal = unequal_work([runs[i].rows[key]], [runs[j].rows[key]])
            judged = judge([values[i]], [values[j]], sigma, detect_pct, dof)
            if time_verdict(judged.ratio, judged.real, th) != "same":
                fails = gates_time(judged.real, judged.ratio, th, unequal)
                flagged += 1
                gated += fails
                alarms.append({"base": i, "new": j, "rule": "between-run", **_describe(key, runs[j]),
                               "change_pct": 100.0 * (judged.ratio - 1.0), "gated": fails})
            for factor in PLANTED:
                slowed = judge([values[i]], [values[j] + math.log(factor)], sigma, detect_pct, dof)
                planted.append({"base": i, "new": j, **_describe(key, runs[j]), "factor": factor,
                                "sigma": sigma, "reported": time_verdict(slowed.ratio, slowed.real, th) == "slower",
                                "gated": gates_time(slowed.real, slowed.ratio, th, unequal), "needed": slowed.needed})
        pairs.append({"base": i, "new": j, "rule": "between-run", "apart": apart(runs[i], runs[j]),
                      "rows": len(found), "flagged": flagged,
                      "gated": gated, "failed": bool(gated)})
    return pairs, alarms, planted


def _split_pair(runs: Sequence[RunFolder], found: dict[Key, list[float]], base: list[int], new: list[int],
                th: Thresholds, detect_pct: float) -> list[dict]:
    """Every case judged with ``base`` runs against ``new`` runs, σ from their replicates (moderated by the
    class's): unchanged, and with NEW × 1.3."""
    sides = {key: ([values[i] for i in base], [values[i] for i in new]) for key, values in found.items()}
    pooled = class_sigmas({key: [b, n] for key, (b, n) in sides.items()})
    rows = []
    for key, (b, n) in sides.items():
        sigma, dof = moderated(*pooled_sigma([b, n]), pooled[noise_class(key)])
        unequal = unequal_work([runs[i].rows[key] for i in base], [runs[i].rows[key] for i in new])
        same = judge(b, n, sigma, detect_pct, dof)
        slowed = judge(b, [v + math.log(PLANTED[0]) for v in n], sigma, detect_pct, dof)
        rows.append({"phase": key[0], "compiled": "compile" in key[3], "needed": same.needed,
                     "false_alarm": gates_time(same.real, max(same.ratio, 1.0 / same.ratio), th, unequal),
                     "caught": gates_time(slowed.real, slowed.ratio, th, unequal)})
    return rows


def _recipe(runs: Sequence[RunFolder], found: dict[Key, list[float]], th: Thresholds,
            detect_pct: float) -> pd.DataFrame:
    """The runs split at random into k BASE and k NEW runs (``RECIPE_SPLITS`` splits per k): per split,
    whether unchanged code failed the gate, and per case whether a ×1.3 was caught."""
    count = len(next(iter(found.values()), []))
    rng, rows = random.Random(0), []
    for k in range(2, count // 2 + 1):
        for split in range(RECIPE_SPLITS):
            order = rng.sample(range(count), 2 * k)
            for row in _split_pair(runs, found, order[:k], order[k:], th, detect_pct):
                rows.append({"runs_a_side": k, "split": split, **row})
    return pd.DataFrame(rows)


def study(runs: Sequence[RunFolder], th: Thresholds | None = None, detect_pct: float = 30.0) -> Study:
    """Every pair of ``runs`` (oldest first; BASE the earlier) judged by both rules; see the module."""
    th = th or Thresholds()
    found = levels(runs)
    within_pairs, within_alarms = _within_run(runs, th)
    between_pairs, between_alarms, planted = _between_run(runs, found, th, detect_pct)
    rows = []
    for key, values in found.items():
        sigma, dof = pooled_sigma([values])
        rows.append({**_describe(key, runs[-1]), "sigma": sigma, "dof": dof, "runs": len(values),
                     "runs_a_side": runs_needed(sigma, detect_pct, KNOWN)})
    sigma = pd.DataFrame(rows)
    return Study(pd.DataFrame(within_pairs + between_pairs), pd.DataFrame(within_alarms + between_alarms),
                 pd.DataFrame(planted), sigma, _recipe(runs, found, th, detect_pct))
