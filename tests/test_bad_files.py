"""Readers tolerate bad files (issue 11, item 2): ``mnist-bench report`` and ``compare`` given a
hand-edited run folder say which file and line is wrong, and either go on without it (one warning line
per problem on stderr, and in the report) or stop with exit 2 and one line naming the fix; never a
traceback, and the folder's files are left as they were. ``runs.jsonl``'s reader skips what is not a
row, naming the line.

Each test copies a committed run folder (its v0 rows only, so a report is drawn in seconds) and edits
one line by hand, as a user would. ``tests/fixtures/scaling/scaling.csv`` (a real ``--bench-ddp 1,2`` run's)
gives a folder the scaling table that committed runs predate.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from mnist_models.cli.main import main
from mnist_models.results.store import append_rows, numbered_rows, read_rows

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "results" / "20261126T050607Z-cpu-amd-avx512-bf16-2c"
SCALING = ROOT / "tests" / "fixtures" / "scaling" / "scaling.csv"
INPUTS = ("train.csv", "inference.csv", "tta.csv", "rounds.csv", "confusion.csv", "predictions.csv", "machine.json",
          "summary.md", "benchmark.json", "cases.jsonl")


def copy_run(tmp_path: Path, name: str = "run") -> Path:
    """The committed run's files (no report), its tables cut to the v0 rows."""
    folder = tmp_path / name
    shutil.copytree(RUN, folder, ignore=shutil.ignore_patterns("report.*", "plots", "compare.*"))
    for table in ("train.csv", "inference.csv"):
        lines = (folder / table).read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / table).write_text("".join([lines[0], *(row for row in lines[1:] if row.split(",")[1] == "v0")]),
                                    encoding="utf-8")
    return folder


def set_cell(path: Path, line: int, column: str, value: str) -> None:
    """Change one cell of one line (the header is line 1); every other line stays byte for byte."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    fields = next(csv.reader([lines[line - 1]]))
    fields[header.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    lines[line - 1] = out.getvalue()
    path.write_text("".join(lines), encoding="utf-8")


def drop_column(path: Path, column: str) -> None:
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    at = rows[0].index(column)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([r[:at] + r[at + 1:] for r in rows])
    path.write_text(out.getvalue(), encoding="utf-8")


def edit_json(path: Path, line: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = text + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in INPUTS if (folder / name).is_file()}


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.out, captured.err


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("mnist-bench: warning: ")]


# --- stop: exit 2, one line, nothing written ------------------------------------------------------------------

def missing_column(folder: Path) -> None:
    drop_column(folder / "train.csv", "median_s")


def malformed_json(folder: Path) -> None:
    edit_json(folder / "machine.json", 3, '  "platform": "Linux"  "python": ')


def newer_format(folder: Path) -> None:
    edit_json(folder / "machine.json", 2, '  "format": 99, "hostname": "vm",')


def format_not_a_number(folder: Path) -> None:
    edit_json(folder / "machine.json", 2, '  "format": "2", "hostname": "vm",')


def missing_inference_column(folder: Path) -> None:
    drop_column(folder / "inference.csv", "batch_size")


STOPS = [(missing_column, "train.csv:1: the header has no column 'median_s'"),
         (malformed_json, "machine.json:3: not valid JSON (Expecting ',' delimiter"),
         (newer_format, "machine.json:2: this run folder has format 99, newer than this mnist-bench reads (up to 1)"),
         (format_not_a_number, "machine.json:2: format '2' is not a whole number"),
         (missing_inference_column, "inference.csv:1: the header has no column 'batch_size'")]


@pytest.mark.parametrize("edit, said", STOPS, ids=[e.__name__ for e, _ in STOPS])
def test_a_file_the_commands_cannot_go_on_without_stops_them_with_one_line(tmp_path, capsys, edit, said):
    good, bad = copy_run(tmp_path, "good"), copy_run(tmp_path, "bad")
    edit(bad)
    before = snapshot(bad)
    code, out, err = run(capsys, "report", bad)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"mnist-bench: error: {bad}/{said}") and "; fix: " in err
    code, out, err = run(capsys, "compare", good, bad)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"mnist-bench: error: NEW: {bad}/{said}") and "; fix: " in err
    assert snapshot(bad) == before and not (bad / "report.html").exists() and not (bad / "compare.md").exists()


def test_an_unfinished_run_from_a_newer_version_stops_too(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    append_rows(folder, [
        {"format": 1, "table": "train", "case": "train v0-cpu-eager", "phase": "train", "model": "v0",
         "device": "cpu", "variant": "eager", "median_s": 0.1, "img_per_s": 3200.0, "test_acc_pct": 90.0},
        {"format": 2, "table": "train", "case": "train v0-cpu-bf16", "phase": "train", "model": "v0"}],
        name="cases.jsonl")
    code, _, err = run(capsys, "report", folder)
    assert code == 2 and err.count("\n") == 1
    assert f"{folder}/cases.jsonl:2: this run folder has format 2, newer than this mnist-bench reads" in err


# --- go on: the rest of the folder, one warning per problem ------------------------------------------------

def test_report_skips_or_keeps_what_it_must_and_says_each_problem_with_file_and_line(tmp_path, capsys):
    folder = copy_run(tmp_path)
    set_cell(folder / "train.csv", 3, "median_s", "abc")  # not a number: row skipped
    set_cell(folder / "train.csv", 5, "model", "v9")  # unknown model: kept
    set_cell(folder / "train.csv", 6, "phase", "inference")  # the wrong table: row skipped
    with open(folder / "train.csv", "a", encoding="utf-8") as f:
        f.write("train,v0,cpu,eager,quick,32\n")  # a line cut short by a crash: row skipped
    set_cell(folder / "inference.csv", 4, "batch_size", "")  # an empty key: row skipped
    raw = (folder / "inference.csv").read_bytes().split(b"\n")
    raw[6] = raw[6].replace(b"AMD EPYC", b"AMD EPYC \xe9")  # not UTF-8 (a Latin-1 editor): kept, said
    (folder / "inference.csv").write_bytes(b"\n".join(raw))
    (folder / "tta.csv").write_text("")  # an empty file: not recorded
    text = (folder / "machine.json").read_text(encoding="utf-8")
    (folder / "machine.json").write_text(text.replace('"session_s": 254.7805805879998', '"session_s": "soon"'),
                                         encoding="utf-8")
    before = snapshot(folder)
    code, out, err = run(capsys, "report", folder)
    assert code == 0 and out.startswith("wrote "), err
    said = warnings_of(err)
    expected = [f"{folder}/machine.json:85: session_s is 'soon', not a number; left out",
                f"{folder}/train.csv:3: median_s 'abc' is not a number; row skipped",
                f"{folder}/train.csv:6: phase 'inference' where this file holds 'train' rows; row skipped",
                f"{folder}/train.csv:10: 6 fields where the header (line 1) has 59; row skipped",
                f"{folder}/train.csv:5: unknown model 'v9' (this version knows v0, v1, v2, fastnet, fastnet2, "
                "lenet5, examples-cnn, mlp, bncnn); its rows are kept",
                f"{folder}/inference.csv:7: not UTF-8 text",
                f"{folder}/inference.csv:4: no batch_size; row skipped",
                f"{folder}/tta.csv: an empty file; treated as not recorded"]
    for line in expected:
        assert any(w.startswith(f"mnist-bench: warning: {line}") for w in said), (line, said)
    assert len(said) == len(expected), said
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "**Problems in this folder's files (8):**" in report
    assert "- `train.csv:3: median_s 'abc' is not a number; row skipped`" in report
    assert "6 training and 31 inference cases; models v0, v9" in report  # 8 − 2 rows (and the cut one), 32 − 1
    assert snapshot(folder) == before


def test_a_header_only_table_and_an_empty_one_are_not_recorded(tmp_path, capsys):
    folder = copy_run(tmp_path)
    header = (folder / "train.csv").read_text(encoding="utf-8").splitlines(keepends=True)[0]
    (folder / "train.csv").write_text(header, encoding="utf-8")
    (folder / "inference.csv").write_bytes(b"")
    code, _, err = run(capsys, "report", folder)
    assert code == 0
    assert warnings_of(err) == [f"mnist-bench: warning: {folder}/train.csv:2: a header and no rows; treated as "
                                "not recorded", f"mnist-bench: warning: {folder}/inference.csv: an empty file; "
                                "treated as not recorded"]
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "This run has no training cases." in report and "This run has no inference cases." in report


def test_damaged_auxiliary_files_are_left_out_not_fatal(tmp_path, capsys):
    folder = copy_run(tmp_path)
    (folder / "rounds.csv").write_text("phase,model,device,variant,batch_size,round\ntrain,v0,cpu,eager,32,1\n")
    (folder / "confusion.csv").write_text("model,device,true,predicted,count,weight_steps\n"
                                          "v0,cpu,0,0,970,1875\nv0,cpu,1000000000,0,1,1875\n")
    (folder / "predictions.csv").write_text('model,device,index,label,predicted,probability\nv0,cpu,1,2,2,0.9\n'
                                            '"v0,cpu,1\n')  # an unbalanced quote takes the rest of the file
    before = snapshot(folder)
    code, _, err = run(capsys, "report", folder)
    assert code == 0
    said = warnings_of(err)
    assert said[0] == (f"mnist-bench: warning: {folder}/rounds.csv:1: the header has no column 'seconds'; the file "
                       "is left out, as if not recorded")
    assert said[1] == (f"mnist-bench: warning: {folder}/confusion.csv:3: true 1000000000 is outside 0–999; "
                       "row skipped")
    assert said[2].startswith(f"mnist-bench: warning: {folder}/predictions.csv:3: 1 fields where the header")
    assert len(said) == 3 and snapshot(folder) == before


def test_compare_says_which_rows_it_could_not_read_and_judges_the_rest(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    set_cell(new / "inference.csv", 9, "median_s", "fast")  # inference v0 cpu channels_last batch 1024
    set_cell(base / "train.csv", 2, "img_per_s", "1,2")
    set_cell(new / "train.csv", 4, "variant", "eagre")
    before = snapshot(base), snapshot(new)
    code, out, err = run(capsys, "compare", base, new, "--json")
    assert code == 1, out[-2000:]  # NEW's unreadable row cannot pass the gate
    assert warnings_of(err) == [
        f"mnist-bench: warning: BASE: {base}/train.csv:2: img_per_s '1,2' is not a number; row skipped",
        f"mnist-bench: warning: NEW: {new}/train.csv:4: unknown variant 'eagre' (this version knows eager, "
        "channels_last, bf16, bf16+channels_last, fp16, auto, compile, compile-max-autotune, compile-reduce-overhead, "
        "cudagraph, compile-freeze-bf16, notebook-loader, augment); its rows are kept as recorded",
        f"mnist-bench: warning: NEW: {new}/inference.csv:9: median_s 'fast' is not a number; row skipped"]
    rows = {(r["phase"], r["variant"], r["batch_size"]): r for r in json.loads(out.splitlines()[-1])["rows"]}
    assert rows["inference", "channels_last", 1024]["verdict"] == "failed"
    assert rows["inference", "channels_last", 1024]["notes"] == [
        "NEW's row could not be read (inference.csv:9: median_s 'fast' is not a number; row skipped)"]
    assert rows["train", "bf16", 32]["verdict"] == "failed"  # renamed away: NEW was asked for it and has no row
    assert rows["train", "eager", 32]["verdict"] == "new" and rows["train", "eagre", 32]["verdict"] == "new"
    assert "BASE's row could not be read (train.csv:2" in rows["train", "eager", 32]["notes"][0]
    assert "Problems in NEW's files (2)" in (new / "compare.md").read_text(encoding="utf-8")
    assert (snapshot(base), snapshot(new)) == before


def test_a_damaged_benchmark_json_leaves_compare_without_its_samples(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    (new / "benchmark.json").write_text('{"benchmarks": [\n  {"name": "x",\n')
    code, out, err = run(capsys, "compare", base, new)
    assert code == 0 and "same 40" in out  # the same rows: median ± IQR (no raw samples on both sides) agrees
    assert warnings_of(err) == [f"mnist-bench: warning: NEW: {new}/benchmark.json:3: not valid JSON (Expecting "
                                "property name enclosed in double quotes, column 1); left out"]


# --- runs.jsonl ----------------------------------------------------------------------------------------------

def test_runs_jsonl_lines_that_are_not_rows_are_skipped_and_named(tmp_path):
    append_rows(tmp_path, [{"epoch": 1}, {"epoch": 2}])
    with open(tmp_path / "runs.jsonl", "ab") as f:
        f.write(b'\n[1, 2]\n{"epoch": 3,\x0c"x": 1}\n\x00\x00\x00\n{"epoch": "\xe9"}\n{"epoch": 4')
    problems: list[tuple[int, str]] = []
    rows = numbered_rows(tmp_path, problems=problems)
    assert [(line, row["epoch"]) for line, row in rows] == [(1, 1), (2, 2), (7, "\ufffd")]  # not UTF-8: read
    # a list, a form feed (which splitlines() would count as a line break), NUL bytes, a cut-off last line
    assert [line for line, _ in problems] == [4, 5, 6, 8]
    with pytest.warns(UserWarning) as caught:
        assert len(read_rows(tmp_path)) == 3
    assert [str(w.message).split(": ")[0] for w in caught] == [f"{tmp_path}/runs.jsonl:{n}" for n in (4, 5, 6, 8)]


def test_values_of_the_wrong_kind_are_left_out(tmp_path, capsys):
    folder = copy_run(tmp_path)
    text = (folder / "machine.json").read_text(encoding="utf-8")
    line = next(n for n, t in enumerate(text.split("\n"), start=1) if t.startswith('  "cpu_isa"'))
    edit_json(folder / "machine.json", line, '  "cpu_isa": 7,')  # text expected
    set_cell(folder / "train.csv", 2, "band_n", "")  # eager's band, partly emptied
    set_cell(folder / "train.csv", 3, "git_commit", "123456789012")  # a commit of digits stays text
    before = snapshot(folder)
    code, _, err = run(capsys, "report", folder)
    assert code == 0
    assert warnings_of(err) == [
        f"mnist-bench: warning: {folder}/machine.json:{line}: cpu_isa is 7, not text; left out, as if not recorded",
        f"mnist-bench: warning: {folder}/train.csv:2: no band_n beside band_min_acc_pct; row skipped"]
    assert snapshot(folder) == before


def test_a_column_emptied_by_hand_is_one_problem_not_one_per_row(tmp_path, capsys):
    base, new = copy_run(tmp_path, "base"), copy_run(tmp_path, "new")
    for line in range(2, 34):  # every inference row of v0
        set_cell(new / "inference.csv", line, "img_per_s", "")
    code, out, err = run(capsys, "compare", base, new)
    assert code == 1 and "failed 32" in out  # each case's row is there and unreadable: none passes the gate
    assert warnings_of(err) == [
        f"mnist-bench: warning: NEW: {new}/inference.csv:2: no img_per_s; row skipped (also lines 3, 4, 5, 6, 7 "
        "and 26 more)", f"mnist-bench: warning: NEW: {new}/inference.csv: no usable row left; treated as not recorded"]


def test_scaling_csv_is_auxiliary_a_missing_column_leaves_it_out_with_a_warning(tmp_path, capsys):
    """A run with ``scaling.csv`` has the report's scaling section; without a column its table reads, the file is
    left out (one warning) and the rest of the report is drawn; a bad list of round times skips its row."""
    folder = copy_run(tmp_path)
    shutil.copy(SCALING, folder / "scaling.csv")
    code, _, err = run(capsys, "report", folder)
    assert code == 0 and warnings_of(err) == []
    assert "## Data-parallel scaling" in (folder / "report.md").read_text(encoding="utf-8")
    assert (folder / "plots" / "scaling_cpu.png").is_file()
    set_cell(folder / "scaling.csv", 3, "round_s", "[0.1, fast]")
    code, _, err = run(capsys, "report", folder)
    assert code == 0 and warnings_of(err) == [f"mnist-bench: warning: {folder}/scaling.csv:3: round_s "
                                              "'[0.1, fast]' is not a list of numbers; row skipped"]
    drop_column(folder / "scaling.csv", "efficiency")
    before = snapshot(folder) | {"scaling.csv": (folder / "scaling.csv").read_bytes()}
    code, _, err = run(capsys, "report", folder)
    assert code == 0 and warnings_of(err) == [f"mnist-bench: warning: {folder}/scaling.csv:1: the header has no "
                                              "column 'efficiency'; the file is left out, as if not recorded"]
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "## Data-parallel scaling" not in report and "## Training" in report
    assert not (folder / "plots" / "scaling_cpu.png").exists()  # the earlier report's figure is gone with it
    assert snapshot(folder) | {"scaling.csv": (folder / "scaling.csv").read_bytes()} == before

