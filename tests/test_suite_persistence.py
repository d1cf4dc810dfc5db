"""The run folder's one writer (``runs.writer``). Every finished suite case is on disk before the next
starts (issue 11, item 1): each case's rows are appended to ``<results>/<run-id>/cases.jsonl`` as whole
lines when it ends; the end of the session writes the tables beside them, machine.json last, then moves
``latest``. A session killed (SIGKILL) or interrupted (Ctrl-C) mid-suite leaves every earlier row intact
and parseable, publishes nothing more, and ``mnist-bench report`` / ``compare`` read the folder as an
incomplete run."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mnist_models.cli.main import main
from mnist_models.results.store import point_latest
from mnist_models.runs.frames import run_tables
from mnist_models.runs.schema import CASES_FILE, RUN_FORMAT
from mnist_models.runs.writer import CaseLog, finish_run, publish_run

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "results" / "20261126T050607Z-cpu-amd-avx512-bf16-2c"


def v0_rows(table: str) -> list[dict]:
    frame = pd.read_csv(RUN / table)
    return frame[frame["model"] == "v0"].to_dict("records")


def test_each_case_is_appended_as_it_ends_and_the_folder_is_made_by_the_first(tmp_path):
    log = CaseLog(str(tmp_path), "20260101T000000Z-cpu-x-2c")
    train, inference = [], []
    assert log.record("train v0-cpu-eager", {"train": train, "inference": inference}) == 0
    assert not tmp_path.joinpath(log.run_id).exists()  # a case without rows makes no folder
    train.append({"phase": "train", "model": "v0", "median_s": 0.1, "round_times_s": [0.1, 0.2]})
    assert log.record("train v0-cpu-eager", {"train": train, "inference": inference}) == 1
    inference += [{"phase": "inference", "batch_size": 1}, {"phase": "inference", "batch_size": 64}]
    assert log.record("inference v0-cpu-eager-1", {"train": train, "inference": inference}) == 2
    lines = (tmp_path / log.run_id / CASES_FILE).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["format"], r["table"], r["case"]) for r in rows] == [
        (RUN_FORMAT, "train", "train v0-cpu-eager"), (RUN_FORMAT, "inference", "inference v0-cpu-eager-1"),
        (RUN_FORMAT, "inference", "inference v0-cpu-eager-1")]
    assert rows[0]["round_times_s"] == [0.1, 0.2] and log.cases == 2
    other = CaseLog(str(tmp_path), "20260101T000000Z-cpu-x-2c")  # a session started in the same second
    other.record("train v0-cpu-eager", {"train": train})
    assert other.folder.name == "20260101T000000Z-cpu-x-2c-2" and len(list(tmp_path.iterdir())) == 2


def test_the_end_of_a_session_writes_its_tables_beside_the_cases_and_then_moves_latest(tmp_path):
    (tmp_path / "earlier").mkdir()
    point_latest(tmp_path, "earlier")
    log = CaseLog(str(tmp_path), "20260101T000000Z-cpu-x-2c")
    train = v0_rows("train.csv")[:2]
    log.record("train v0-cpu-eager", {"train": train})
    readme = tmp_path / "README.md"
    tables = run_tables(train, [], [])  # no inference, no time to accuracy, no quality rows: no such files
    folder = finish_run(log, tables, "# summary\n", None, {"cpu": "x"}, {readme: "block\n"})
    assert folder == log.folder and sorted(p.name for p in folder.iterdir()) == [
        CASES_FILE, "machine.json", "summary.md", "train.csv"]
    assert json.loads((folder / "machine.json").read_text()) == {"format": RUN_FORMAT, "cpu": "x"}
    assert pd.read_csv(folder / "train.csv")["variant"].tolist() == [r["variant"] for r in train]
    assert readme.read_text() == "block\n" and (tmp_path / "latest").resolve() == folder.resolve()


def test_a_published_run_never_touches_an_earlier_one(tmp_path):
    first = publish_run(tmp_path, "run-a", {"summary.md": "# a\n", "benchmark.json": {"benchmarks": []}})
    assert sorted(p.name for p in first.iterdir()) == ["benchmark.json", "summary.md"]
    second = publish_run(tmp_path, "run-b", {"summary.md": "# b\n", "benchmark.json": None})
    assert (tmp_path / "latest").resolve() == second.resolve() and not (second / "benchmark.json").exists()
    with pytest.raises(FileExistsError):
        publish_run(tmp_path, "run-a", {"summary.md": "# c\n"})
    assert (first / "summary.md").read_text() == "# a\n"


def incomplete_run(tmp_path: Path) -> Path:
    """A run folder as a session killed after three cases leaves it: cases.jsonl only."""
    log = CaseLog(str(tmp_path), "20260101T000000Z-cpu-amd-avx512-bf16-2c")
    train, inference = v0_rows("train.csv")[:2], v0_rows("inference.csv")[:1]
    train[0]["round_times_s"] = [train[0]["min_s"], train[0]["median_s"], train[0]["max_s"]]
    log.record("train v0-cpu-eager", {"train": train[:1]})
    log.record("train v0-cpu-channels_last", {"train": train})
    log.record("inference v0-cpu-eager-1", {"train": train, "inference": inference})
    return log.folder


def test_report_and_compare_mark_an_incomplete_run(tmp_path, capsys):
    folder = incomplete_run(tmp_path)
    before = (folder / CASES_FILE).read_bytes()
    assert main(["report", str(folder)]) == 0
    err = capsys.readouterr().err
    said = ("incomplete run: the session stopped after 3 finished cases (the last: inference v0-cpu-eager-1); no "
            "summary, skips or cuts were written, and the tables come from cases.jsonl")
    assert err == f"mnist-bench: warning: {folder}: {said}\n"
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "> **Incomplete run.** The session stopped after 3 finished cases" in report
    assert "2 training and 1 inference cases" in report and "![Time per training round]" in report
    base = tmp_path / "base"
    shutil.copytree(RUN, base, ignore=shutil.ignore_patterns("report.*", "plots", "compare.*"))
    assert main(["compare", str(base), str(folder)]) == 0  # the cases it did not reach: removed, not failed
    captured = capsys.readouterr()
    assert captured.err.startswith(f"mnist-bench: warning: NEW: {folder}: {said}\n")
    assert "NEW `20260101T000000Z-cpu-amd-avx512-bf16-2c` is an incomplete run. The session stopped" in captured.out
    assert "Verdicts: same 3, removed 157." in captured.out
    assert (folder / CASES_FILE).read_bytes() == before and not (tmp_path / "latest").exists()


def start_suite(results: Path, mnist_root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "bench", "--benchmark-disable", "--bench-profile", "smoke", "--bench-device",
         "cpu", "--bench-models", "v0", "--bench-variants", "eager,channels_last", "--bench-results", str(results),
         "--bench-data-root", str(mnist_root), "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def first_row_on_disk(proc: subprocess.Popen, results: Path, timeout: float = 300) -> Path:
    """The run folder, once its cases.jsonl holds a row (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in results.glob(f"*/{CASES_FILE}") if p.stat().st_size > 0] if results.is_dir() else []
        if found:
            return found[0].parent
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no case finished in time"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_a_suite_stopped_mid_session_keeps_every_finished_case(tmp_path, mnist_root, capsys, sig):
    results = tmp_path / "results"
    proc = start_suite(results, mnist_root)
    folder = first_row_on_disk(proc, results)
    proc.send_signal(sig)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 2), output[-3000:]
    text = (folder / CASES_FILE).read_text(encoding="utf-8")
    assert text.endswith("\n")  # whole lines only
    rows = [json.loads(line) for line in text.splitlines()]  # every row parses
    assert rows and all(r["format"] == RUN_FORMAT and r["table"] in ("train", "inference") for r in rows)
    assert all(math.isfinite(r["median_s"]) and r["model"] == "v0" for r in rows)
    assert {p.name for p in folder.iterdir()} == {CASES_FILE}  # no tables: a finished session writes those
    assert not (results / "latest").exists()
    if sig == signal.SIGINT:
        cases = len({r["case"] for r in rows})
        assert f"the rows of its {cases} finished case{'s' if cases > 1 else ''} are in {folder}/cases.jsonl" in output
    assert main(["report", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "incomplete run: the session stopped after" in err and "Traceback" not in err
    assert "> **Incomplete run.**" in (folder / "report.md").read_text(encoding="utf-8")
