"""``mnist-bench history`` and ``push``: every run indexed into a real database (SQLite, and a real PostgreSQL
server that two machines push to), incrementally; step changes found where they are (a planted one) and
not where there are none (real A/A runs of unchanged code: the false-alarm rate ``docs/history.md``
states); damaged runs skipped with one line; a database of a newer schema refused."""

from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy
from pg_server import new_database

from mnist_models.cli import main as cli
from mnist_models.history.tables import SCHEMA_VERSION
from mnist_models.measure.between_runs import P_REAL, judge, t_quantile
from mnist_models.measure.steps import despiked, find_steps, series_sigma

ROOT = Path(__file__).resolve().parents[1]
AA = ROOT / "tests" / "fixtures" / "aa" / "cpu-amd-avx512-bf16.tar.xz"
AA_COMMIT = "ef6ba91"
# The case made slower: FastNet's inference at batch 1024, the steadiest case of the A/A runs (2.8% between runs;
# a 30% step in train v2's 10% noise would need more than 8 runs a side to be told from chance).
PLANTED = {"phase": "inference", "model": "fastnet", "device": "cpu", "variant": "eager", "batch_size": 1024}
PLANTED_CASE = "inference fastnet cpu eager b1024"
START = datetime(2027, 1, 1, tzinfo=timezone.utc)  # the generated runs' first id


def history(*argv: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["history", *argv, "--json"])
    lines = out.getvalue().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else None, err.getvalue()


@pytest.fixture(scope="module")
def aa_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 16 A/A runs (one commit, one machine), unpacked once; tests copy what they change."""
    folder = tmp_path_factory.mktemp("aa")
    with tarfile.open(AA) as archive:
        archive.extractall(folder, filter="data")
    return folder


def copy_runs(source: Path, target: Path, skip: str = "") -> list[Path]:
    """A copy of the A/A runs to change or write pages into (``skip``: a file name left out); its run
    folders, oldest first."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(skip) if skip else None)
    return sorted(p for p in target.iterdir() if (p / "machine.json").is_file())


def plant(run: Path, factor: float, commit: str) -> None:
    """Make the planted case of ``run`` ``factor`` times slower and say the run was of ``commit``."""
    for name in ("train.csv", "inference.csv"):
        table = pd.read_csv(run / name)
        if name == "inference.csv":
            rows = pd.concat([table[k] == v for k, v in PLANTED.items()], axis=1).all(axis=1)
            assert rows.sum() == 1
            for column in ("median_s", "min_s", "max_s", "mean_s", "iqr_s"):
                table.loc[rows, column] *= factor
            table.loc[rows, "img_per_s"] /= factor
        table["git_commit"] = commit
        table.to_csv(run / name, index=False)
    machine = json.loads((run / "machine.json").read_text())
    (run / "machine.json").write_text(json.dumps({**machine, "git_commit": commit}))


# --------------------------------------------------------------------------------------------
# The rule


def test_a_step_is_judged_as_compare_judges_two_sets_of_runs() -> None:
    levels = [0.0, 0.02, -0.01, 0.01, 0.0, -0.02, 0.3, 0.31, 0.29, 0.3]
    sigma, dof = series_sigma(levels)
    (step,) = find_steps(levels, sigma, dof)
    clean = list(despiked(levels))
    assert step.index == 6 and step.pct == pytest.approx(100 * (math.exp(0.3) - 1), abs=1)
    assert step.z == pytest.approx(judge(clean[:6], clean[6:], sigma, 5.0, dof).z)
    assert step.threshold == t_quantile(P_REAL / 5, dof)  # five splits tried
    assert find_steps(levels[:6], sigma, dof) == []  # one level: nothing to find
    assert find_steps([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0], 0.01, 10) == []  # one odd run is not a step
    assert find_steps([0.0, 0.0, 0.0, 0.02, 0.02, 0.02], 0.001, 10) == []  # 2%: real, but under 5%


# --------------------------------------------------------------------------------------------
# Real runs


@pytest.mark.slow
def test_aa_history_has_no_step_and_a_planted_one_is_found_at_its_commit(aa_runs: Path, tmp_path: Path) -> None:
    copy_runs(aa_runs, tmp_path / "aa")
    code, report, err = history(str(tmp_path / "aa"), "--db", f"sqlite:///{tmp_path / 'aa.db'}")
    assert code == 0, err
    assert report["indexed"]["folders"] == 16 and report["machine_kinds"] == ["cpu-amd-avx512-bf16"]
    assert report["steps"] == []  # 16 runs of unchanged code: no case moved (the false-alarm rate, measured)
    runs = copy_runs(aa_runs, tmp_path / "planted")
    for run in runs[8:]:
        plant(run, 1.3, "abc1234")
    code, report, err = history(str(tmp_path / "planted"), "--filter", "inference v2*")
    assert code == 0, err
    (step,) = report["steps"]
    assert step["case"] == PLANTED_CASE and step["change"] == "slower"
    assert step["before_commit"].startswith(AA_COMMIT) and step["after_commit"] == "abc1234"
    assert step["first_run"] == runs[8].name and step["pct"] == pytest.approx(30, abs=6)
    page = (tmp_path / "planted" / "history.html").read_text(encoding="utf-8")
    assert f"{PLANTED_CASE} on cpu-amd-avx512-bf16" in page and "inference v2 cpu" in page
    assert (tmp_path / "planted" / "history.md").is_file()


@pytest.mark.slow
def test_indexing_is_incremental_and_skips_a_damaged_run(aa_runs: Path, tmp_path: Path) -> None:
    runs = copy_runs(aa_runs, tmp_path / "results")
    results = tmp_path / "results"
    shutil.copy(ROOT / "results" / "runs.jsonl", results / "runs.jsonl")
    (runs[3] / "train.csv").write_text("phase,model\nnot,a\n\x00table", encoding="utf-8")  # damaged
    code, report, err = history(str(results))
    assert code == 0, err
    assert report["indexed"]["folders"] == 15 and len(report["indexed"]["skipped"]) == 1
    assert f"skipped: {runs[3]}" in err and len([line for line in err.splitlines() if "skipped:" in line]) == 1
    rows = (results / "runs.jsonl").read_bytes().count(b"\n")
    assert report["indexed"]["rows"] == rows
    # nothing new: nothing read again
    code, report, _ = history(str(results))
    assert report["indexed"] == {"folders": 0, "unchanged": 16, "skipped": [], "rows": 0}
    # a new run folder and two new rows: only they are read
    shutil.copytree(runs[0], results / "20270101T000000Z-cpu-amd-avx512-bf16-2c")
    with (results / "runs.jsonl").open("ab") as handle:
        handle.write(b"".join((ROOT / "results" / "runs.jsonl").read_bytes().splitlines(keepends=True)[:2]))
    code, report, _ = history(str(results))
    assert report["indexed"]["folders"] == 1 and report["indexed"]["rows"] == 2
    # the damaged run repaired: indexed now
    shutil.copy(runs[2] / "train.csv", runs[3] / "train.csv")
    code, report, _ = history(str(results))
    assert report["indexed"]["folders"] == 1 and report["indexed"]["skipped"] == []


@pytest.mark.slow
def test_two_machines_push_to_one_postgresql_history(aa_runs: Path, tmp_path: Path, postgres_url: str) -> None:
    """Two results folders (two machine kinds) pushed to one PostgreSQL database; ``history --db`` on a
    third, empty folder draws both kinds."""
    url = new_database(postgres_url, "team_history")
    mine = copy_runs(aa_runs, tmp_path / "amd")[:6]
    theirs = sorted(p for p in (ROOT / "results").iterdir() if p.is_dir() and "h200" in p.name)
    assert theirs
    for folders in ([str(p) for p in mine], [str(p) for p in theirs]):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            assert cli.main(["push", *folders, "--db", url, "--json"]) == 0, err.getvalue()
        assert json.loads(out.getvalue().splitlines()[-1])["indexed"]["folders"] == len(folders)
    code, report, err = history(str(tmp_path / "elsewhere"), "--db", url)
    assert code == 0, err
    assert report["machine_kinds"] == ["cpu-amd-avx512-bf16", "gpu-nvidia-h200"]
    assert report["runs"] == len(mine) + len(theirs)


@pytest.mark.slow
def test_a_newer_schema_or_a_database_that_is_down_is_one_line_and_loses_nothing(aa_runs: Path,
                                                                                    tmp_path: Path) -> None:
    db, results = tmp_path / "h.db", tmp_path / "results"
    copy_runs(aa_runs, results)
    code, _, err = history(str(results), "--db", f"sqlite:///{db}")
    assert code == 0, err
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE history_meta SET value = :v WHERE key = 'schema_version'"),
                           {"v": str(SCHEMA_VERSION + 1)})
    engine.dispose()
    before = db.read_bytes()
    code, _, err = history(str(results), "--db", f"sqlite:///{db}")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"schema version {SCHEMA_VERSION + 1}, newer than" in err and "fix: use the mnist-bench that wrote it" in err
    assert db.read_bytes() == before
    code, _, err = history(str(results), "--db", "postgresql://postgres@127.0.0.1:1/history")
    assert code == 2 and "cannot use the history database" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_read_only_history_database_is_one_line_and_loses_nothing(aa_runs: Path, tmp_path: Path,
                                                                   postgres_url: str) -> None:
    url = new_database(postgres_url, "read_only_history")
    runs = copy_runs(aa_runs, tmp_path / "results")
    shutil.rmtree(runs[-1])  # indexed after the database became read-only
    code, report, err = history(str(tmp_path / "results"), "--db", url)
    assert code == 0, err
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("ALTER DATABASE read_only_history SET default_transaction_read_only = on"))
        count = "SELECT count(*) FROM history_points"
        before = connection.execute(sqlalchemy.text(count)).scalar()
    shutil.copytree(aa_runs / runs[-1].name, runs[-1])
    code, _, err = history(str(tmp_path / "results"), "--db", url)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is read-only" in err, err
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text(count)).scalar() == before
    engine.dispose()


@pytest.mark.slow
def test_a_thousand_runs_index_once_and_the_page_stays_small(aa_runs: Path, tmp_path: Path) -> None:
    """1,000 run folders (the A/A runs copied under new ids, a planted step at the 600th): all indexed, a
    second call reads none again, the step is found, and the page is one file under 5 MB. How long each
    call takes is measured apart (docs/history.md), not asserted here."""
    results = tmp_path / "results"
    results.mkdir()
    unchanged = copy_runs(aa_runs, tmp_path / "before", skip="rounds.csv")  # the index never reads rounds.csv
    slower = copy_runs(aa_runs, tmp_path / "after", skip="rounds.csv")
    for run in slower:
        plant(run, 1.5, "def5678")
    for i in range(1000):
        stamp = (START + timedelta(minutes=10 * i)).strftime("%Y%m%dT%H%M%SZ")
        shutil.copytree((unchanged if i < 600 else slower)[i % len(unchanged)],
                        results / f"{stamp}-cpu-amd-avx512-bf16-2c")
    code, report, err = history(str(results))
    assert code == 0, err
    assert report["indexed"]["folders"] == 1000 and report["runs"] == 1000
    assert [s["case"] for s in report["steps"]] == [PLANTED_CASE]
    assert report["steps"][0]["after_commit"] == "def5678"
    code, report, err = history(str(results))
    assert report["indexed"]["folders"] == 0 and report["indexed"]["unchanged"] == 1000
    assert (results / "history.html").stat().st_size < 5 * 1024 * 1024
