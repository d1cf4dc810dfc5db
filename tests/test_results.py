"""The results writer: append-only runs.jsonl, atomic tables, environment capture, Markdown."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import torch

from mnist_models.config import RunConfig
from mnist_models.host.kinds import machine_tag
from mnist_models.report.markdown import markdown_table
from mnist_models.report.readme import splice_machine_block, splice_marked
from mnist_models.results import provenance, store
from mnist_models.results.provenance import environment, epoch_records
from mnist_models.results.store import RUNS_FILE, ResultsError, append_rows, check_writable, read_rows, write_text


def _epoch_row(epoch: int, acc: float) -> dict:
    return {"epoch": epoch, "train_loss": 0.5 / epoch, "train_acc_pct": acc - 1.0, "train_s": 1.25,
            "train_images": 60_000, "train_img_per_s": 48_000.0, "test_loss": 0.3 / epoch,
            "test_acc_pct": acc, "eval_s": 0.125}


# --------------------------------------------------------------------------------------------
# runs.jsonl: append-only


def test_append_rows_appends_and_never_rewrites(tmp_path: Path) -> None:
    first = [{"run_id": "a", "epoch": 1, "x": 1.5}, {"run_id": "a", "epoch": 2, "x": 2.5}]
    path = append_rows(tmp_path, first)
    assert path == tmp_path / RUNS_FILE
    before = path.read_bytes()
    inode = path.stat().st_ino
    assert before.count(b"\n") == 2 and before.endswith(b"\n")

    second = [{"run_id": "b", "epoch": 1, "x": -0.5}]
    append_rows(tmp_path, second)
    after = path.read_bytes()

    assert after.startswith(before), "append_rows rewrote earlier lines"
    assert len(after) > len(before)
    assert path.stat().st_ino == inode, "runs.jsonl was replaced instead of appended to"
    appended = after[len(before):].decode("utf-8").splitlines()
    assert [json.loads(line) for line in appended] == second
    assert read_rows(tmp_path) == first + second


def test_append_rows_with_no_rows_leaves_file_unchanged(tmp_path: Path) -> None:
    append_rows(tmp_path, [{"run_id": "a", "epoch": 1}])
    before = (tmp_path / RUNS_FILE).read_bytes()
    append_rows(tmp_path, [])
    assert (tmp_path / RUNS_FILE).read_bytes() == before


def test_append_rows_writes_one_line_per_row(tmp_path: Path) -> None:
    rows = [{"note": "line\nbreak and | pipe", "n": i} for i in range(3)]
    append_rows(tmp_path, rows)
    lines = (tmp_path / RUNS_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert [json.loads(line) for line in lines] == rows


def test_read_rows_round_trips(tmp_path: Path) -> None:
    cfg = RunConfig(model="v0", loader="fast", epochs=1, data_root="/some/root")
    rows = [
        {"run_id": "r1", "nested": {"a": [1, 2, 3], "b": None}, "flag": True, "acc": 91.94, "text": "ü|x"},
        {"run_id": "r1", "config": cfg, "path": Path("/tmp/x"), "tensor": torch.tensor([1.0, 2.5])},
    ]
    append_rows(tmp_path, rows)
    got = read_rows(tmp_path)
    assert got[0] == rows[0]
    assert got[1] == {"run_id": "r1", "config": json.loads(json.dumps(asdict(cfg))), "path": "/tmp/x",
                      "tensor": [1.0, 2.5]}


def test_read_rows_missing_file_is_empty_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    assert read_rows(tmp_path) == []
    assert read_rows(tmp_path / "does-not-exist") == []
    (tmp_path / RUNS_FILE).write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert read_rows(tmp_path) == [{"a": 1}, {"a": 2}]


def test_to_json_keeps_nan_and_rejects_unknown_types() -> None:
    line = store.to_json({"x": float("nan")})
    assert "\n" not in line
    assert math.isnan(json.loads(line)["x"])
    with pytest.raises(TypeError, match="object"):
        store.to_json({"x": object()})


# --------------------------------------------------------------------------------------------
# Atomic table writes


def test_write_files_writes_each_kind_of_content_all_together(tmp_path: Path) -> None:
    frame = pd.DataFrame({"model": ["v0"], "acc": [91.5]})
    bench = {"benchmarks": [{"stats": {"data": [0.1]}}]}
    written = store.write_files(tmp_path / "run", {"t.csv": frame, "m.json": {"path": Path("/x"), "n": 1},
                                                   "benchmark.json": bench, "s.md": "é\n", "p.png": b"\x89PNG",
                                                   "none.csv": None}, also={tmp_path / "README.md": "block\n"})
    assert [p.name for p in written] == ["t.csv", "m.json", "benchmark.json", "s.md", "p.png", "README.md"]
    assert (tmp_path / "run" / "t.csv").read_text() == "model,acc\nv0,91.5\n"  # no index column
    assert json.loads((tmp_path / "run" / "m.json").read_text()) == {"path": "/x", "n": 1}
    assert (tmp_path / "run" / "m.json").read_text().startswith('{\n  "path"')  # ours: indented by 2
    assert (tmp_path / "run" / "benchmark.json").read_text().startswith('{\n "benchmarks"')  # pytest-benchmark's: 1
    assert (tmp_path / "run" / "s.md").read_text(encoding="utf-8") == "é\n"
    assert (tmp_path / "run" / "p.png").read_bytes() == b"\x89PNG" and not (tmp_path / "run" / "none.csv").exists()
    assert (tmp_path / "README.md").read_text() == "block\n"


def test_write_text_writes_utf8_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "table.md"
    assert write_text(target, "acc ≥ 90 %\n") == target
    assert target.read_bytes() == "acc ≥ 90 %\n".encode()
    write_text(target, "second\n")
    assert target.read_text(encoding="utf-8") == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.md"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()], ids=["OSError", "KeyboardInterrupt"])
def test_write_text_is_atomic_when_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                exc: BaseException) -> None:
    target = tmp_path / "seed_reproduction.csv"
    target.write_text("old,content\n1,2\n", encoding="utf-8")
    calls = []

    def failing_replace(src, dst):  # noqa: ANN001, ANN202
        calls.append((Path(src), Path(dst)))
        # The new bytes are complete in the temp file at this point; only the rename fails.
        assert Path(src).read_text(encoding="utf-8") == "new\n"
        raise exc

    monkeypatch.setattr(store.os, "replace", failing_replace)
    with pytest.raises(type(exc)):
        write_text(target, "new\n")

    assert len(calls) == 1 and calls[0][1] == target and calls[0][0].parent == tmp_path
    assert target.read_text(encoding="utf-8") == "old,content\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["seed_reproduction.csv"], "temp file left behind"


def test_write_text_is_atomic_when_the_write_itself_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "seed_reproduction.md"
    target.write_bytes(b"previous table\n")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_text(target, "x" * 100_000)
    assert target.read_bytes() == b"previous table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["seed_reproduction.md"]


# --------------------------------------------------------------------------------------------
# check_writable


def test_check_writable_creates_directory_and_leaves_no_probe(tmp_path: Path) -> None:
    target = tmp_path / "new" / "results"
    assert check_writable(str(target)) == target
    assert target.is_dir()
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("below", ["results", "deep/er/results", ""], ids=["child", "grandchild", "file-itself"])
def test_check_writable_under_a_regular_file_raises_one_line(tmp_path: Path, below: str) -> None:
    # Tests run as root, so a chmod-ed directory would still be writable: use a file as parent.
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"I am a file\n")
    target = blocker / below if below else blocker
    with pytest.raises(ResultsError) as info:
        check_writable(target)
    message = str(info.value)
    assert "\n" not in message
    assert "--results" in message
    assert str(target) in message
    assert isinstance(info.value, OSError)  # callers that catch OSError still catch it
    assert blocker.read_bytes() == b"I am a file\n"


# --------------------------------------------------------------------------------------------
# Records and environment


def test_epoch_records_carry_run_id_kind_config_and_environment() -> None:
    cfg = RunConfig.from_protocol("notebook", model="v1", data_root="/data")
    rows = [_epoch_row(1, 80.0), _epoch_row(2, 85.5)]
    records = epoch_records("20260101T000000Z-abc123", "reproduce", cfg, rows)

    assert len(records) == 2
    env = environment()
    for record, row in zip(records, rows, strict=True):
        assert record["run_id"] == "20260101T000000Z-abc123"
        assert record["kind"] == "reproduce"
        assert record["config"] == {**asdict(cfg), "model_args": []}  # as JSON holds it: a list
        assert record["model_source"]["kind"] == "built-in"
        assert record["config"]["lr"] == 0.01 and record["config"]["protocol"] == "notebook"
        assert record["environment"] == env
        assert datetime.fromisoformat(record["time_utc"]).utcoffset().total_seconds() == 0
        for key, value in row.items():
            assert record[key] == value
    # The records survive the JSON round trip unchanged.
    assert [json.loads(store.to_json(r)) for r in records] == records


def test_epoch_records_accepts_a_plain_dict_config() -> None:
    records = epoch_records("rid", "train", {"model": "v0", "lr": 0.1}, [_epoch_row(1, 90.0)])
    assert records[0]["config"] == {"model": "v0", "lr": 0.1}
    assert records[0]["kind"] == "train"
    assert epoch_records("rid", "train", {"model": "v0"}, []) == []


def test_environment_describes_this_process() -> None:
    env = environment()
    for key in ("torch", "cpu", "cpu_count", "torch_threads", "python", "platform", "gpu", "git_commit"):
        assert key in env, key
    assert env["torch"] == torch.__version__
    assert isinstance(env["cpu"], str) and env["cpu"]
    assert env["cpu_count"] == os.cpu_count()
    assert isinstance(env["torch_threads"], int) and env["torch_threads"] >= 1
    if torch.cuda.is_available():
        assert env["gpu"] == torch.cuda.get_device_name(0)
        assert machine_tag(env) == env["gpu"]
    else:
        assert env["gpu"] is None and env["cuda"] is None
        tag = machine_tag(env)
        assert tag.startswith(f"{env['cpu']} ({env['cpu_count']} cores; ")
        assert ("bf16 native" if env["bf16_native"] else "bf16 emulated") in tag
        assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        assert env["machine_kind"].startswith("cpu-")
    # Rows written before capabilities were recorded still get a tag.
    assert machine_tag({"gpu": None, "cpu": "Old CPU", "cpu_count": 2}) == "Old CPU (2 cores)"
    json.loads(store.to_json(env))  # serialisable as it is


def test_new_run_id_format_and_uniqueness() -> None:
    ids = {provenance.new_run_id() for _ in range(50)}
    assert len(ids) == 50
    for run_id in ids:
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", run_id), run_id


# --------------------------------------------------------------------------------------------
# Markdown


def _cells(line: str) -> list[str]:
    """Cells of a Markdown table line, splitting on unescaped pipes only."""
    assert line.startswith("|") and line.endswith("|"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_table_renders_header_rule_and_rows() -> None:
    frame = pd.DataFrame({
        "model": ["v0", "v1 (lr 0.1)", "a|b"],
        "acc %": [91.9412, 73.27, float("nan")],
        "n seeds": [3, 1, 2],
    })
    lines = markdown_table(frame).split("\n")

    assert len(lines) == 2 + len(frame)
    assert lines[0] == "| model | acc % | n seeds |"
    assert lines[1] == "|---|---|---|"
    assert _cells(lines[2]) == ["v0", "91.94", "3"]
    assert _cells(lines[3]) == ["v1 (lr 0.1)", "73.27", "1"]
    # `|` inside a cell is escaped, so the row still has three cells; NaN is an empty cell.
    assert r"a\|b" in lines[4]
    assert _cells(lines[4]) == [r"a\|b", "", "2"]


def test_markdown_table_custom_float_format() -> None:
    frame = pd.DataFrame({"loss": [0.28671234]})
    assert markdown_table(frame, floatfmt="{:.2f}").split("\n")[2] == "| 0.29 |"


# --------------------------------------------------------------------------------------------
# splice_marked


def test_splice_marked_replaces_only_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    head = "# Title\n\nIntro text.\n\n"
    tail = "\n\n## Later\n<!-- other:start -->keep me<!-- other:end -->\n"
    readme.write_text(f"{head}<!-- seed-table:start -->\nold table\n<!-- seed-table:end -->{tail}", encoding="utf-8")

    assert splice_marked(readme, "seed-table", "\n| a |\n|---|\n| 1 |\n\n") is True
    text = readme.read_text(encoding="utf-8")
    assert text == f"{head}<!-- seed-table:start -->\n| a |\n|---|\n| 1 |\n<!-- seed-table:end -->{tail}"
    assert "old table" not in text

    # Splicing again replaces the previous body rather than accumulating.
    assert splice_marked(readme, "seed-table", "new body") is True
    expected = f"{head}<!-- seed-table:start -->\nnew body\n<!-- seed-table:end -->{tail}"
    assert readme.read_text(encoding="utf-8") == expected
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


@pytest.mark.parametrize("content", [
    "# No markers at all\n",
    "only start <!-- seed-table:start --> here\n",
    "only end <!-- seed-table:end --> here\n",
    "<!-- other:start -->x<!-- other:end -->\n",
], ids=["none", "start-only", "end-only", "other-name"])
def test_splice_marked_without_markers_returns_false_and_changes_nothing(tmp_path: Path, content: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_bytes(content.encode("utf-8"))
    mtime = readme.stat().st_mtime_ns
    assert splice_marked(readme, "seed-table", "body") is False
    assert readme.read_bytes() == content.encode("utf-8")
    assert readme.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_check_writable_refuses_a_runs_file_that_cannot_be_appended(tmp_path):
    """A runs.jsonl that is a folder is caught before any work, with the --results fix."""
    (tmp_path / RUNS_FILE).mkdir()
    with pytest.raises(ResultsError, match="--results"):
        check_writable(tmp_path)


def test_check_writable_does_not_create_runs_file(tmp_path):
    check_writable(tmp_path)
    assert not (tmp_path / RUNS_FILE).exists()


def test_splice_by_machine_kind_keeps_other_machines_blocks(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    amx = "<!-- t@cpu-intel-amx:start -->\nAMX figures\n<!-- t@cpu-intel-amx:end -->"
    readme.write_text(f"# R\n<!-- t:start -->\n{amx}\n<!-- t:end -->\ntail\n", encoding="utf-8")
    assert splice_marked(readme, "t", "AVX2 figures", kind="cpu-amd-avx2") is True
    text = readme.read_text(encoding="utf-8")
    assert amx in text and "<!-- t@cpu-amd-avx2:start -->\nAVX2 figures\n<!-- t@cpu-amd-avx2:end -->" in text
    assert text.index("AMX figures") < text.index("AVX2 figures") < text.index("<!-- t:end -->")
    assert splice_marked(readme, "t", "AVX2 again", kind="cpu-amd-avx2") is True  # replaced, not added
    text = readme.read_text(encoding="utf-8")
    assert "AVX2 figures" not in text and text.count("AVX2 again") == 1 and amx in text
    assert text.endswith("<!-- t:end -->\ntail\n")


def test_machine_block_is_titled_with_the_machine_and_date(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- t:start -->\n<!-- t:end -->\n", encoding="utf-8")
    env = environment()
    assert splice_machine_block(readme, "t", "### Table\n\n| a |\n|---|", env) is True
    text = readme.read_text(encoding="utf-8")
    assert f"<!-- t@{env['machine_kind']}:start -->\n**{machine_tag(env)}** · kind `{env['machine_kind']}`" \
           f" · measured 20" in text
    assert "\n#### Table\n" in text  # headings go one level down, under the title line
