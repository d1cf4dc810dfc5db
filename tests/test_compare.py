"""``mnist-bench compare``: the Mann–Whitney test against hand-computed and enumerated values, and the
command on copies of committed run folders (in tmp, never in results/) with planted changes: a case
made 30% slower, an accuracy drop below eager's band, new, removed and failed cases, A/A, folders
without raw samples, bad input. One slow test compares two real new-format suite runs."""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mnist_models.cli.main import main
from mnist_models.measure.significance import mann_whitney_u, min_two_sided_p, significance, u_distribution
from mnist_models.report.compare.verdicts import Thresholds, compare
from mnist_models.report.publish import write_files
from mnist_models.runs.folder import read_run

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "results" / "20261126T050607Z-cpu-amd-avx512-bf16-2c"  # has bands, ref_* columns, benchmark.json
OLDEST = ROOT / "results" / "20261125T182325Z-cpu-intel-r-xeon-r-processor-2c"  # no bands, no test_images
KEYS = ["phase", "model", "device", "variant", "batch_size"]


# --- the statistics -------------------------------------------------------------------------------

def brute_force(a: list[float], b: list[float]) -> tuple[float, float]:
    """U and the exact two-sided p by enumerating every split of the pooled samples."""
    pooled, m = a + b, len(a)

    def u_of(x, y):
        return sum((xi > yi) + 0.5 * (xi == yi) for xi in x for yi in y)

    u0, below, above, total = u_of(a, b), 0, 0, 0
    for idx in itertools.combinations(range(len(pooled)), m):
        x = [pooled[i] for i in idx]
        u = u_of(x, [pooled[i] for i in range(len(pooled)) if i not in idx])
        total, below, above = total + 1, below + (u <= u0), above + (u >= u0)
    return u0, min(1.0, 2 * min(below, above) / total)


def test_mann_whitney_matches_hand_computed_values():
    # Wholly separated samples: U = 0, p = 2 / C(6, 3) = 0.1 and 2 / C(8, 4) = 1/35.
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]).u == 0
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]).p == pytest.approx(0.1)
    assert mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8]).p == pytest.approx(1 / 35)
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]).u == 9  # U counts pairs where a > b
    # Normal approximation: U = 0, mean 12.5, sd √(25·11/12), continuity ½ → z = 2.5067, p = 0.012186
    # (scipy.stats.mannwhitneyu(..., method="asymptotic") gives 0.0121857803…).
    normal = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], method="normal")
    assert (normal.method, normal.p) == ("normal", pytest.approx(0.0121857803, rel=1e-6))
    # Ties: ranks 1, 2.5, 2.5, 4.5, 6 → U = 1.5; Σ(t³ − t) = 12 → variance 25/12 · (11 − 12/90), p = 0.027328.
    tied = mann_whitney_u([1, 2, 2, 3, 4], [3, 5, 6, 7, 8])
    assert (tied.method, tied.u, tied.p) == ("normal", 1.5, pytest.approx(0.0273285, rel=1e-4))
    assert mann_whitney_u([1.0, 1.0], [1.0, 1.0]).p == 1.0  # no spread at all: no evidence


def test_exact_p_matches_enumeration():
    rng = random.Random(7)
    for _ in range(25):
        a = [rng.random() for _ in range(rng.randint(1, 6))]
        b = [rng.random() + rng.choice([0.0, 0.3]) for _ in range(rng.randint(1, 6))]
        result = mann_whitney_u(a, b)
        u, p = brute_force(a, b)
        assert result.method == "exact" and result.u == pytest.approx(u) and result.p == pytest.approx(p)
    assert u_distribution(3, 3).tolist() == [1, 1, 2, 3, 3, 3, 3, 2, 1, 1]  # Gaussian binomial [6 choose 3]


def test_tie_corrected_variance_matches_the_permutation_variance():
    a, b = [1, 2, 2, 3, 3], [2, 3, 4, 4]
    pooled = a + b
    us = [mann_whitney_u([pooled[i] for i in idx], [pooled[i] for i in range(9) if i not in idx]).u
          for idx in itertools.combinations(range(9), 5)]
    mean = sum(us) / len(us)
    variance = sum((u - mean) ** 2 for u in us) / len(us)
    ties = [1, 3, 3, 2]  # value 1 once, 2 three times, 3 three times, 4 twice
    formula = 5 * 4 / 12 * (10 - sum(t ** 3 - t for t in ties) / (9 * 8))
    assert variance == pytest.approx(formula)


def test_the_test_runs_only_where_n_allows_p_below_0_002():
    assert min_two_sided_p(6, 6) > 0.002 > min_two_sided_p(7, 7)
    assert min_two_sided_p(3, 3) == pytest.approx(0.1)
    fast, slow = [1.00, 1.01, 1.02], [1.30, 1.31, 1.32]
    assert significance(fast, slow, (1.01, 0.01), (1.31, 0.01)).method == "range overlap"
    assert significance(fast, slow, (1.01, 0.01), (1.31, 0.01)).different
    assert not significance(fast, [1.015, 1.3, 1.4], (1.01, 0.01), (1.3, 0.2)).different  # ranges overlap
    many = significance([1.0 + i / 1000 for i in range(30)], [1.3 + i / 1000 for i in range(30)], (1, 0), (1.3, 0))
    assert many.method == "mann-whitney" and many.different and many.p < 1e-10
    no_samples = significance(None, None, (1.0, 0.05), (1.3, 0.05))
    assert no_samples.method == "median±IQR overlap" and no_samples.different
    assert not significance(None, None, (1.0, 0.2), (1.3, 0.2)).different  # [0.8, 1.2] and [1.1, 1.5] overlap


# --- run folders with planted changes --------------------------------------------------------------

def copy_run(tmp_path: Path, name: str, source: Path = RUN, rounds: bool = True) -> Path:
    """A copy of a committed run in tmp; with ``rounds``, a rounds.csv made from its benchmark.json's
    per-round samples (as a new-format run has)."""
    dest = tmp_path / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("compare.*"))
    if rounds:
        bench = json.loads((dest / "benchmark.json").read_text())
        lines = [{**{k: b["extra_info"][k] for k in KEYS}, "round": i, "seconds": s, "train_loss": None}
                 for b in bench["benchmarks"] if "phase" in b["extra_info"]
                 for i, s in enumerate(b["stats"]["data"], start=1)]
        write_files(dest, {"rounds.csv": pd.DataFrame(lines)})
    return dest


def table_of(phase: str) -> str:
    return "train.csv" if phase == "train" else "inference.csv"


def edit_rows(folder: Path, phase: str, edit) -> None:
    frame = pd.read_csv(folder / table_of(phase))
    write_files(folder, {table_of(phase): edit(frame)})


def match(frame: pd.DataFrame, key: tuple) -> pd.Series:
    return (frame[KEYS[1:4]] == list(key[1:4])).all(axis=1) & (frame["batch_size"] == key[4])


def slow_down(folder: Path, key: tuple, factor: float) -> None:
    """Make one case ``factor`` × slower everywhere: its row and its raw samples."""
    def edit(frame):
        hit = match(frame, key)
        for column in ("median_s", "iqr_s", "min_s", "max_s", "mean_s", "p50_ms", "p90_ms", "p99_ms"):
            if column in frame:
                frame.loc[hit, column] *= factor
        frame.loc[hit, "img_per_s"] /= factor
        return frame
    edit_rows(folder, key[0], edit)
    rounds = pd.read_csv(folder / "rounds.csv")
    rounds.loc[(rounds["phase"] == key[0]) & match(rounds, key), "seconds"] *= factor
    write_files(folder, {"rounds.csv": rounds})


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows_by_case(comparison) -> dict[tuple, dict]:
    return {(r["phase"], r["model"], r["device"], r["variant"], r["batch_size"]): r for r in comparison.rows}


def rows_by_case_json(out: str) -> dict[tuple, dict]:
    """compare --json's rows by case key, from the last line of its output."""
    return {tuple(r[k] for k in KEYS): r for r in json.loads(out.strip().splitlines()[-1])["rows"]}


def test_a_a_flags_nothing(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    for pair in ((base, base), (base, new)):
        code, out, _ = run_cli(capsys, *pair, "--json")
        assert code == 0, out[-2000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result["gate"] == "passed" and result["samples"] == "rounds.csv"
        assert {r["verdict"] for r in result["rows"]} == {"same"} and len(result["rows"]) == 160
        assert all(g["ratio"] == pytest.approx(1.0) for g in result["geomean"])
    assert (new / "compare.md").exists() and "<section" in (new / "compare.html").read_text()
    assert "http" not in (new / "compare.html").read_text()  # self-contained: nothing fetched


@pytest.mark.parametrize("key", [("train", "v2", "cpu", "channels_last", 32),
                                 ("inference", "v2", "cpu", "eager", 256)], ids=["train-n3", "inference-n30"])
def test_a_planted_30_percent_slowdown_fails_the_gate(tmp_path, capsys, key):
    """The rounds of each run as the samples (``--noise none``, one run a side): what a machine with no
    run-to-run noise known gets; the noise rule: the tests after ``jittered``."""
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    slow_down(new, key, 1.3)
    code, out, _ = run_cli(capsys, base, new, "--noise", "none", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    row = next(r for r in result["rows"] if tuple(r[k] for k in KEYS) == key)
    assert code == 1 and result["gate"] == "failed"
    assert row["verdict"] == "slower" and row["time_change_pct"] == pytest.approx(30.0)
    assert row["test"] == ("range overlap" if key[0] == "train" else "mann-whitney")
    assert [tuple(r[k] for k in KEYS) for r in result["regressions"]] == [key]
    assert "FAIL: time +30.0%" in (new / "compare.md").read_text()
    # Below the gate: 8% slower is a "slower" verdict (beyond the 5% effect) that does not fail at 10%.
    fresh = copy_run(tmp_path, "fresh")
    slow_down(fresh, key, 1.08)
    assert run_cli(capsys, base, fresh, "--noise", "none")[0] == 0
    assert rows_by_case(compare(read_run(base, "BASE"), read_run(fresh, "NEW")))[key]["verdict"] == "slower"
    assert run_cli(capsys, base, fresh, "--noise", "none", "--fail-above", "5")[0] == 1
    assert run_cli(capsys, base, new, "--noise", "none", "--metric", "accuracy")[0] == 0  # time not gated


def test_a_training_case_cut_on_one_side_only_is_reported_but_not_gated(tmp_path, capsys):
    """A budget cut (10 steps a round instead of 100) changes the work per round, and the per-image time
    with it: the row says so and does not fail the gate; the same change at equal work does."""
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    key = ("train", "v2", "cpu", "channels_last", 32)
    slow_down(new, key, 1.3 / 10)  # a tenth of the work, each image 1.3× slower

    def cut(frame):
        hit = match(frame, key)
        frame.loc[hit, "images_per_round"] //= 10
        frame.loc[hit, "steps_per_round"] //= 10
        return frame
    edit_rows(new, "train", cut)
    code, out, _ = run_cli(capsys, base, new, "--noise", "none", "--json")
    row = rows_by_case_json(out)[key]
    assert code == 0 and row["verdict"] == "slower" and row["time_change_pct"] == pytest.approx(30.0)
    assert row["regressions"] == [] and any("unequal work per round (BASE 1,600 images, NEW 160:" in note
                                            for note in row["notes"]), row["notes"]


def test_an_accuracy_drop_below_eager_band_fails_the_gate(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    key = ("train", "v0", "cpu", "channels_last", 32)  # eager's band: 89.22–89.63%

    def drop(frame):
        frame.loc[match(frame, key), "test_acc_pct"] = 88.9
        return frame
    edit_rows(new, "train", drop)
    code, out, _ = run_cli(capsys, base, new, "--json")
    result = json.loads(out.strip().splitlines()[-1])
    row = next(r for r in result["rows"] if tuple(r[k] for k in KEYS) == key)
    assert code == 1 and row["verdict"] == "same"
    assert row["accuracy"].startswith("below BASE band (89.22–89.63%)")
    assert row["regressions"] == ["accuracy below BASE band (89.22–89.63%)"]
    assert run_cli(capsys, base, new, "--metric", "time")[0] == 0  # accuracy not gated
    # A case already outside eager's band in BASE is judged against its own BASE accuracy.
    assert rows_by_case(compare(read_run(base, "BASE"), read_run(base, "NEW")))[
        ("train", "v1", "cpu", "bf16", 32)]["accuracy"] == "ok"


def test_accuracy_floor_is_the_prediction_interval_of_one_more_eager_seed(tmp_path, capsys):
    """Where BASE's eager band has its mean and std (runs since they are recorded), the floor is the 95%
    prediction interval of one more seed: mean − t(0.975, 3) · std · √(1 + 1/4) = 89.40 − 3.182 · 0.20 · 1.118
    = 88.69%, lower than the band's lowest of 4 seeds (89.22%), which one seed in five would fall below."""
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    eager, key = ("train", "v0", "cpu", "eager", 32), ("train", "v0", "cpu", "channels_last", 32)
    set_value(base, eager, "band_mean_acc_pct", 89.40)
    set_value(base, eager, "band_std_acc_pct", 0.20)
    for acc, verdict in ((88.9, "ok"), (88.5, "below BASE's eager seeds (95% prediction interval ≥ 88.69%: "
                                              "mean 89.40 ± 0.20 over 4 seeds)")):
        set_value(new, key, "test_acc_pct", acc)
        row = rows_by_case(compare(read_run(base, "BASE"), read_run(new, "NEW")))[key]
        assert row["accuracy"] == verdict


def test_new_removed_failed_and_fixed_cases(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    gone = ("inference", "v1", "cpu", "bf16", 64)  # selected in NEW, no row, not skipped → failed
    edit_rows(new, "inference", lambda f: f[~match(f, gone)])
    edit_rows(new, "train", lambda f: f[f["model"] != "v2"])  # v2 no longer selected → removed
    edit_rows(new, "train", lambda f: pd.concat([f, f[f["model"] == "v0"].assign(model="v9")]))  # → new
    machine = json.loads((new / "machine.json").read_text())
    write_files(new, {"machine.json": {**machine, "models": ["v0", "v1", "fastnet", "v9"]}})
    rows = rows_by_case(compare(read_run(base, "BASE"), read_run(new, "NEW")))
    assert rows[gone]["verdict"] == "failed" and rows[gone]["regressions"] == ["failed"]
    assert rows[("train", "v2", "cpu", "eager", 32)]["verdict"] == "removed"
    assert rows[("train", "v9", "cpu", "eager", 32)]["verdict"] == "new"
    assert run_cli(capsys, base, new)[0] == 1  # the failed case
    code, out, _ = run_cli(capsys, new, base)
    assert code == 0 and "fixed 1" in out and "new 8" in out and "removed 8" in out
    broken = copy_run(tmp_path, "broken")  # a row whose loss went non-finite
    key = ("train", "v0", "cpu", "bf16", 32)
    edit_rows(broken, "train", lambda f: f.assign(train_loss=f["train_loss"].where(~match(f, key), math.nan)))
    assert rows_by_case(compare(read_run(base, "BASE"), read_run(broken, "NEW")))[key]["verdict"] == "failed"
    assert rows_by_case(compare(read_run(broken, "BASE"), read_run(base, "NEW")))[key]["verdict"] == "fixed"
    edit_rows(broken, "train", lambda f: f.assign(median_s=f["median_s"].where(~match(f, key), 0.0)))
    fixed = rows_by_case(compare(read_run(broken, "BASE"), read_run(base, "NEW")))[key]
    assert fixed["verdict"] == "fixed" and fixed["notes"] == ["BASE: no finite time"]


def test_old_folders_without_raw_samples_compare(tmp_path, capsys):
    old = copy_run(tmp_path, "old", OLDEST, rounds=False)
    newer = copy_run(tmp_path, "newer", ROOT / "results" / "20261125T195105Z-cpu-intel-r-xeon-r-processor-2c",
                     rounds=False)
    code, out, _ = run_cli(capsys, old, old, "--json")
    assert code == 0 and {r["verdict"] for r in json.loads(out.splitlines()[-1])["rows"]} == {"same"}
    comparison = compare(read_run(old, "BASE"), read_run(newer, "NEW"))
    assert comparison.source == "benchmark.json"  # both have pytest-benchmark's samples, neither rounds.csv
    for folder in (old, newer):
        (folder / "benchmark.json").unlink()
    comparison = compare(read_run(old, "BASE"), read_run(newer, "NEW"))
    assert comparison.source is None
    assert {r["test"] for r in comparison.rows if "test" in r} == {"median±IQR overlap"}
    code, out, _ = run_cli(capsys, old, newer, "--noise", "none")  # two real runs a day apart: batch-1 fastnet
    assert code == 1 and "| fastnet | cpu | eager | 1 | slower |" in out and "FAIL: time +54.3%" in out
    mixed = copy_run(tmp_path, "mixed")  # rounds.csv on one side only: median ± IQR on both
    assert compare(read_run(old, "BASE"), read_run(mixed, "NEW")).source is None


def set_value(folder: Path, key: tuple, column: str, value) -> None:
    """One cell of one case's row (train.csv or inference.csv)."""
    def edit(frame):
        frame.loc[match(frame, key), column] = value
        return frame
    edit_rows(folder, key[0], edit)


def gate(capsys, base: Path, new: Path, *flags: str) -> tuple[int, list[tuple]]:
    """compare's exit code and the regressions it names: (phase, model, device, variant, batch, what)."""
    code, out, _ = run_cli(capsys, base, new, "--json", *flags)
    result = json.loads(out.strip().splitlines()[-1])
    return code, [(*(r[k] for k in KEYS), *r["regressions"]) for r in result["regressions"]]


def test_memory_and_compile_time_fail_the_gate_only_when_gated_and_above_their_floors(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    grown = ("train", "v2", "cpu", "compile", 32)  # peak RSS 1,104 MiB, compile 7.37 s in BASE
    set_value(new, grown, "peak_rss_mib", 1103.957031 * 1.3)
    set_value(new, grown, "compile_s", 7.372367 * 1.5)
    assert gate(capsys, base, new) == (0, [])  # neither is gated by default
    assert gate(capsys, base, new, "--metric", "memory") == (1, [(*grown, "memory +30.0%")])
    assert gate(capsys, base, new, "--metric", "compile") == (1, [(*grown, "compile +50.0%")])
    assert gate(capsys, base, new, "--metric", "all") == (1, [(*grown, "memory +30.0%", "compile +50.0%")])
    assert gate(capsys, base, new, "--metric", "memory,compile", "--fail-above", "60")[0] == 0
    # Below the floors (16 MiB, 0.5 s), however large the share: 0.25 → 0.74 s is +200%, 10 MiB is 1%.
    small = copy_run(tmp_path, "small")
    set_value(small, ("train", "v0", "cpu", "compile-max-autotune", 32), "compile_s", 0.246485 * 3)
    set_value(small, ("inference", "v0", "cpu", "eager", 1), "peak_rss_mib", 1243.800781 + 10)
    assert gate(capsys, base, small, "--metric", "all", "--fail-above", "0", "--min-effect", "0") == (0, [])


def test_acc_drop_sets_how_far_accuracy_may_fall_inside_the_band(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    key = ("train", "v2", "cpu", "channels_last", 32)  # 88.64% in BASE; eager's band 68.32–89.32%
    set_value(new, key, "test_acc_pct", 88.14)
    assert gate(capsys, base, new) == (0, [])  # 0.5 points, inside the band: within the default 1 point
    assert gate(capsys, base, new, "--acc-drop", "0.3") == (1, [(*key, "accuracy -0.50 pts")])
    assert gate(capsys, base, new, "--acc-drop", "0.3", "--metric", "time") == (0, [])


def test_accuracies_of_different_steps_are_not_compared(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    key = ("train", "v0", "cpu", "bf16", 32)  # 100 steps per round, 89.22% in BASE
    set_value(new, key, "steps_per_round", 50)
    set_value(new, key, "test_acc_pct", 80.0)
    row = rows_by_case(compare(read_run(base, "BASE"), read_run(new, "NEW")))[key]
    assert row["accuracy"] == "not comparable (steps/round 100→50)" and row["regressions"] == []
    assert gate(capsys, base, new) == (0, [])
    set_value(new, key, "acc_band", "below eager band")  # NEW's own flag, vs eager retrained to its steps
    assert gate(capsys, base, new) == (1, [(*key, "accuracy not comparable (steps/round 100→50); NEW below its "
                                                  "own eager band")])


def test_a_failed_write_into_new_is_one_line_and_writes_nothing(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base", rounds=False), copy_run(tmp_path, "new", rounds=False)
    (new / "compare.md").mkdir()  # a folder where the file goes (a read-only NEW does not stop root)
    before = sorted(p.name for p in new.iterdir())
    code, out, err = run_cli(capsys, base, new)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"mnist-bench: error: could not write {new}/compare.md (")
    assert "fix: " in err and sorted(p.name for p in new.iterdir()) == before  # no compare.html, no temp file


# --- run-to-run noise: several runs a side, a noise table ------------------------------------------

def jittered(tmp_path: Path, into: str, count: int, seed: int, sd: float = 0.02) -> Path:
    """A results folder of ``count`` copies of RUN, every case's times in each scaled by its own
    lognormal factor (SD ``sd`` of ln time): runs of unchanged code with a known run-to-run noise."""
    rng = random.Random(seed)
    folder = tmp_path / into
    for number in range(count):
        run = copy_run(folder, f"2026010{number + 1}T000000Z-cpu-amd-avx512-bf16-2c")
        factors = {}
        for name in ("train.csv", "inference.csv"):
            frame = pd.read_csv(run / name)
            scale = [factors.setdefault(tuple(row), math.exp(rng.gauss(0.0, sd)))
                     for row in frame[KEYS].itertuples(index=False)]
            for column in ("median_s", "iqr_s", "min_s", "max_s", "mean_s"):
                frame[column] = frame[column] * scale
            write_files(run, {name: frame})
        rounds = pd.read_csv(run / "rounds.csv")
        rounds["seconds"] *= [factors[tuple(row)] for row in rounds[KEYS].itertuples(index=False)]
        write_files(run, {"rounds.csv": rounds})
    return folder


def test_several_runs_a_side_are_judged_against_their_own_run_to_run_noise(tmp_path, capsys):
    base, new = jittered(tmp_path, "base", 3, seed=1), jittered(tmp_path, "new", 3, seed=2)
    code, out, _ = run_cli(capsys, base, new, "--noise", "none", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["gate"] == "passed" and {r["verdict"] for r in result["rows"]} == {"same"}
    assert {(r["test"], r["runs_base"], r["runs_new"]) for r in result["rows"]} == {("between-run", 3, 3)}
    slowed = ("inference", "v2", "cpu", "eager", 256)
    for run in sorted(p for p in new.iterdir()):
        slow_down(run, slowed, 1.3)
    (found,) = gate(capsys, base, new, "--noise", "none")[1]  # the change of the sides' mean levels
    assert found[:5] == slowed and 28.0 < float(found[5].removeprefix("time +").removesuffix("%")) < 32.0
    assert (sorted(new.iterdir())[-1] / "compare.md").is_file()  # written into NEW's newest run


def test_the_noise_command_learns_a_table_that_compare_judges_one_run_a_side_by(tmp_path, capsys):
    aa = jittered(tmp_path, "aa", 5, seed=3)
    assert main(["noise", str(aa)]) == 0
    out = capsys.readouterr().out
    assert "# Run-to-run noise: 5 runs on cpu-amd-avx512-bf16" in out
    assert "| between-run | hours apart | 10 | 160 |" in out  # a day apart each
    table = pd.read_csv(aa / "noise.csv")
    assert len(table) == 160 and table["sigma"].between(0.005, 0.06).all() and (table["dof"] == 4).all()
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    slowed = ("train", "v2", "cpu", "bf16", 32)
    slow_down(new, slowed, 1.5)
    code, out, _ = run_cli(capsys, base, new, "--noise", aa / "noise.csv", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 1 and result["noise"]["runs"] == 5 and result["regressions"][0]["regressions"] == ["time +50.0%"]
    assert {r["test"] for r in result["rows"]} == {"between-run"} and len(result["regressions"]) == 1


# --- two real new-format runs ----------------------------------------------------------------------

@pytest.mark.slow
def test_two_real_runs_compare_and_a_planted_slowdown_is_caught(tmp_path, capsys, mnist_root):
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-p", "no:cacheprovider",
                               "-q", "--bench-profile", "quick", "--bench-models", "v0", "--bench-variants", "eager",
                               "--bench-device", "cpu", "--bench-data-root", str(mnist_root),
                               "--bench-results", str(tmp_path / "results")],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first, second = sorted(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    assert (first / "rounds.csv").exists()
    comparison = compare(read_run(first, "BASE"), read_run(second, "NEW"), Thresholds())
    assert comparison.source == "rounds.csv" and len(comparison.rows) == 5
    assert {r["verdict"] for r in comparison.rows} <= {"same", "slower", "faster"}
    assert not any(r["regressions"] and r["regressions"][0].startswith("accuracy") for r in comparison.rows)
    assert run_cli(capsys, first, first)[0] == 0
    slowed = tmp_path / "slowed"
    shutil.copytree(first, slowed)
    key = ("inference", "v0", "cpu", "eager", 256)
    slow_down(slowed, key, 1.3)
    code, out, _ = run_cli(capsys, first, slowed, "--noise", "none")  # the rounds alone: caught
    assert code == 1 and "FAIL: time +30.0%" in out
    code, out, _ = run_cli(capsys, first, slowed, "--json")  # against the run-to-run noise known for the kind
    row = rows_by_case_json(out)[key]
    assert row["test"] == "between-run" and row["time_change_pct"] == pytest.approx(30.0)
    # caught where one run a side can catch it, else the row says how many runs it needs
    assert (code == 1) == bool(row["regressions"])
    assert row["regressions"] or any(note.startswith("too noisy to gate") for note in row["notes"])
