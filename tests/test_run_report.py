"""``mnist-bench report``: the run report on real run folders.

A small real suite run (smoke profile, made once per module in a subprocess, which also proves the
suite writes the report at the end of its session), every run folder committed under ``results/``
(each copied to a temporary folder first: the repository's results are never written), a copy
relabelled as a run with CUDA rows, a run with data-parallel scaling (``--bench-ddp``, finished and cut
short), and a run beside a comparison and a profile. Checked: the files
exist, ``report.html`` is one self-contained page (every image a ``data:`` URI that decodes as PNG,
nothing that points outside), the plots are valid PNGs, each section is there or says why not, and
bad input exits 2 with one line.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mnist_models.cli import main as cli
from mnist_models.data import load_split
from mnist_models.report import html
from mnist_models.report.run import digit_figures as digits
from mnist_models.report.run import run_page
from mnist_models.runs.folder import read_run

ROOT = Path(__file__).resolve().parents[1]


def committed_runs() -> list[Path]:
    """The run folders git tracks under results/ (in a checkout without git: every one there). A run the
    user's own `make bench` just wrote is not one of them: its report is not what these tests pin."""
    try:
        listed = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True,
                                check=True, timeout=60).stdout.split()
        tracked = {ROOT / Path(name).parts[0] / Path(name).parts[1] for name in listed if len(Path(name).parts) > 2}
    except (OSError, subprocess.SubprocessError):
        tracked = None
    return sorted(p for p in (ROOT / "results").glob("2026*") if p.is_dir() and (p / "train.csv").is_file()
                  and (tracked is None or p in tracked))


COMMITTED_RUNS = committed_runs()
# Whole suite runs (training, inference and the prediction-quality files), newest last: a run of one
# phase alone (`-k train`) is a committed run too, but not what the checks of every section need.
FULL_RUNS = [p for p in COMMITTED_RUNS if all((p / f).is_file() for f in ("inference.csv", "confusion.csv"))]
SECTIONS = ("## Machine", "## Models compared (eager)", "## Training", "## Time per round", "## Training curves",
            "## Inference", "### Latency percentiles", "## Memory", "## Roofline", "## Prediction quality",
            "## Skipped")
INFERENCE_SECTIONS = ("### Latency percentiles",)  # drawn only from inference rows
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
GPU = {"gpu": "NVIDIA H100 80GB HBM3", "cuda": "13.0", "cudnn": 91002, "gpu_capability": "9.0"}


def copy_run(run: Path, into: Path) -> Path:
    """A copy of a run folder (its own files only: any report an earlier version left is dropped)."""
    target = into / run.resolve().name
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("report.*", "plots"))
    return target


def assert_png(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.verify()
    return image.size


def assert_self_contained(page: str) -> int:
    """One page that needs nothing else: every image an embedded PNG, nothing fetched or linked outside."""
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    embedded = DATA_URI.findall(page)
    assert len(sources) == len(embedded) == page.count("<img ")  # no src= that is not a data: URI
    for data in embedded:
        width, height = assert_png(base64.b64decode(data))
        assert width > 100 and height > 100
    assert not re.search(r"https?://", page), "the page names a network address"
    assert not re.search(r"<link|<iframe|<object|<embed|@import|url\(", page)
    assert all(not re.match(r"[a-z]+:", href) for href in re.findall(r'href="([^"]*)"', page))
    return len(embedded)


def check_report(folder: Path) -> str:
    """The files a report writes, consistent with each other; returns report.md."""
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    page = (folder / "report.html").read_text(encoding="utf-8")
    named = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", markdown)
    plots = sorted((folder / "plots").glob("*.png"))
    assert sorted(named) == sorted(f"plots/{p.name}" for p in plots) and named
    for plot in plots:
        assert_png(plot.read_bytes())
    assert assert_self_contained(page) == len(named)
    inference = (folder / "inference.csv").is_file()  # a training-only session (-k train) has none
    for section in SECTIONS:
        assert (f"\n{section}\n" in markdown) == (inference or section not in INFERENCE_SECTIONS), section
    return markdown


@pytest.mark.slow
def test_the_suite_writes_the_report_at_the_end_of_its_session(models_run):
    folder, stdout = models_run
    assert f"mnist-bench: wrote {folder / 'report.html'}" in stdout
    markdown = check_report(folder)
    assert "## Time to accuracy" in markdown and "### Time to 90% test accuracy (fastnet2, cpu" in markdown


@pytest.mark.slow
def test_a_new_format_run_has_every_section_with_its_figures(models_run, tmp_path, mnist_root):
    folder = copy_run(models_run[0], tmp_path)
    assert cli.main(["report", str(folder), "--data-root", str(mnist_root)]) == 0
    markdown = check_report(folder)
    for plot in ("models", "speedup", "round_times", "training_curves", "throughput", "latency", "memory",
                 "roofline", "confusion", "test_images", "predictions_v2_cpu"):
        assert (folder / "plots" / f"{plot}.png").is_file(), plot
    assert "### v2 · cpu" in markdown and "| speed-up vs eager |" in markdown and "Δacc vs eager (pts)" in markdown
    assert "| s/round mean ± std (95% CI) |" in markdown  # "–" here: the smoke profile times one round
    assert re.search(r"Eager fp32's accuracy over 4 seeds: [\d.]+–[\d.]+%, mean [\d.]+ ± [\d.]+% \(sample std; 95% CI",
                     markdown)
    assert "every timed round from `rounds.csv`" in markdown and "no per-round data" not in markdown
    assert "- v2 · cpu: " in markdown and "% correct; weakest class" in markdown  # from confusion.csv
    machine = json.loads((folder / "machine.json").read_text())
    for skip in machine["skips"]:  # every case skipped while running, with its reason
        assert f"| {skip['case']} | {skip['reason']} |" in markdown
    for left in machine["left_out"]:  # never collected (CUDA on a CPU-only machine), with its reason
        assert f"| {left['what']} | {left['reason']} |" in markdown
    assert ("## Left out" in markdown) == bool(machine["left_out"])
    assert "## Comparison with another run" not in markdown and "## Latest profile" not in markdown


@pytest.mark.slow
def test_a_run_with_bench_ddp_has_the_scaling_section_and_its_figure(ddp_run, tmp_path):
    """The suite's report of a ``--bench-ddp 1,2`` session: ``report.scaling_table``'s table (one line per layout)
    and figure; the same from ``cases.jsonl`` alone (a session stopped before its end)."""
    folder, stdout = ddp_run
    assert f"mnist-bench: wrote {folder / 'report.html'}" in stdout
    scaling = pd.read_csv(folder / "scaling.csv")
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    shutil.copy(folder / "cases.jsonl", incomplete)
    assert cli.main(["report", str(incomplete)]) == 0
    for run in (folder, incomplete):
        markdown = check_report(run)
        assert "\n## Data-parallel scaling\n" in markdown
        assert "### Data-parallel scaling (v0, cpu, fp32, NCHW, gloo, batch 32 per process)" in markdown
        assert "![Data-parallel scaling on cpu](plots/scaling_cpu.png)" in markdown
        for layout, role in zip(scaling["layout"], scaling["role"], strict=True):
            assert f"| {layout} | {role} | " in markdown


def test_committed_runs_from_before_bench_ddp_read_without_scaling():
    older = [folder for folder in COMMITTED_RUNS if not (folder / "scaling.csv").exists()]
    assert older  # the runs committed before the suite measured scaling
    for folder in older:
        run = read_run(folder)
        assert run.scaling is None and "scaling.csv" not in run.files
        assert not [p for p in run.problems if p.file == "scaling.csv"]


@pytest.mark.parametrize("run", COMMITTED_RUNS, ids=lambda p: p.name)
def test_every_committed_run_folder_gets_a_report(run, tmp_path):
    folder = copy_run(run, tmp_path)
    assert cli.main(["report", str(folder)]) == 0
    markdown = check_report(folder)
    files = {p.name for p in run.iterdir()}
    if "rounds.csv" not in files:
        assert "This run has no per-round data" in markdown and "this run has no `rounds.csv`" in markdown
    if "confusion.csv" not in files:
        assert "Confusion matrices: not recorded" in markdown
    if "predictions.csv" not in files:
        assert "### Predictions on a fixed sample\n\nNot recorded" in markdown
    assert ("## Time to accuracy" in markdown) == ("tta.csv" in files)
    machine = json.loads((run / "machine.json").read_text())
    if machine.get("gpu"):  # every skip it recorded is listed
        assert machine["skips"] and all(f"| {skip['case']} | " in markdown for skip in machine["skips"])
    elif machine.get("left_out"):  # CPU runs leave the CUDA-only variants out, once each, with the reason
        assert all(f"| {left['what']} | {left['reason']} |" in markdown for left in machine["left_out"])
        assert "| fp16 on cpu | fp16 runs on CUDA only" in markdown
    else:  # older CPU runs skipped them case by case: from machine.json or, older still, summary.md
        assert "| inference v0 cpu fp16 | fp16 runs on CUDA only" in markdown
    assert ("machine kind | not recorded" in markdown) == ("machine_kind" not in machine)
    assert ("## Cut to keep the time budget" in markdown) == bool(machine.get("cuts"))


def relabel_cuda(run: Path, into: Path) -> Path:
    """A copy of a run whose rows also ran on a GPU: each CPU row again as a CUDA row with GPU fields."""
    folder = copy_run(run, into)
    for name in ("train.csv", "inference.csv", "tta.csv", "rounds.csv", "confusion.csv", "predictions.csv"):
        path = folder / name
        if not path.is_file():
            continue
        rows = pd.read_csv(path)
        cuda = rows.assign(device="cuda")
        if "peak_rss_mib" in rows:
            rss = rows["peak_rss_mib"]
            cuda = cuda.assign(peak_allocated_mib=rss / 20, peak_reserved_mib=rss / 10, peak_rss_mib=None,
                               peak_rss_growth_mib=None, **{k: v for k, v in GPU.items() if k in rows})
        pd.concat([rows, cuda]).to_csv(path, index=False)
    machine = json.loads((folder / "machine.json").read_text())
    machine |= GPU | {"devices": ["cpu", "cuda"], "skips": [],
                      "matmul_peak_gflop_per_s": {**machine.get("matmul_peak_gflop_per_s", {}), "cuda/fp32": 51000.0}}
    (folder / "machine.json").write_text(json.dumps(machine))
    return folder


def test_an_old_run_with_cuda_rows_renders(tmp_path):
    """The oldest committed folder relabelled as a GPU run (a new-format one: the test after this)."""
    folder = relabel_cuda(COMMITTED_RUNS[0], tmp_path)
    assert cli.main(["report", str(folder)]) == 0
    markdown = check_report(folder)
    assert "| GPU | NVIDIA H100 80GB HBM3 (CUDA capability 9.0) |" in markdown
    assert "| CUDA / cuDNN | 13.0 / 91002 |" in markdown
    assert "### v2 · cuda" in markdown and "### v2 · cuda: inference" in markdown
    assert "No case was skipped (machine.json lists none)." in markdown


@pytest.mark.slow
def test_a_new_format_run_with_cuda_rows_renders(models_run, tmp_path):
    folder = relabel_cuda(models_run[0], tmp_path)
    assert cli.main(["report", str(folder)]) == 0
    check_report(folder)
    assert (folder / "plots" / "predictions_v2_cuda.png").is_file()


def write_profile(results: Path, name: str) -> Path:
    """A profile folder as `mnist-bench profile` leaves it (the files the report reads)."""
    folder = results / "profiles" / name
    folder.mkdir(parents=True)
    ran = "Ran: model v2, variant `eager`, on cpu."
    (folder / "summary.md").write_text(f"# Profile `{name}`\n\n{ran}\n")
    (folder / "profile.json").write_text(json.dumps({"id": name, "ran": ran}))
    pd.DataFrame({"category": ["convolution", "optimizer"], "ms_per_step": [1.25, 0.5],
                  "share_pct": [71.4, 28.6]}).to_csv(folder / "breakdown.csv", index=False)
    buffer = io.BytesIO()
    Image.new("RGB", (320, 180), "#4c72b0").save(buffer, format="PNG")
    (folder / "breakdown.png").write_bytes(buffer.getvalue())
    return folder


def test_a_comparison_the_latest_profile_and_the_sweeps_are_included_where_they_exist(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    folder = copy_run(FULL_RUNS[-1], results)
    shutil.copytree(ROOT / "results" / "sweeps" / "sweep", results / "sweeps" / "sweep")  # the README's sweep
    (folder / "compare.md").write_text("# Comparison `a` → `b`\n\n## Training\n\n| case | change |\n|---|---|\n"
                                       "| v2 cpu eager | 1.05× slower |\n")
    write_profile(results, "20261126T010000Z-v2-eager")
    newest = write_profile(results, "20261126T020000Z-v2-bf16")
    assert cli.main(["report", str(folder)]) == 0
    markdown = check_report(folder)
    assert "## Comparison with another run" in markdown and "### Comparison `a` → `b`" in markdown
    assert "#### Training" in markdown and "| v2 cpu eager | 1.05× slower |" in markdown  # headings nest
    assert f"[`{newest.name}`](../profiles/{newest.name}/summary.md)" in markdown
    assert "Ran: model v2, variant `eager`, on cpu." in markdown and "| convolution | 1.250 | 71.4 |" in markdown
    assert (folder / "plots" / "profile_breakdown.png").read_bytes() == (newest / "breakdown.png").read_bytes()
    page = (folder / "report.html").read_text()
    assert f'href="../profiles/{newest.name}/summary.md"' in page
    assert "## Sweeps" in markdown and "- [`sweep`](../sweeps/sweep/report.html): 21 trials, best trial 16: 98.89" \
        in markdown and 'href="../sweeps/sweep/report.html"' in page


def test_with_the_real_compare_and_profile_commands(tmp_path, mnist_root, capsys):
    """The files `mnist-bench compare` and `mnist-bench profile` write, as they write them today."""
    results = tmp_path / "results"
    gpu = [p for p in FULL_RUNS if "-gpu-" in p.name][-1]
    cpu = [p for p in FULL_RUNS if "-cpu-" in p.name][-1]
    base, new = copy_run(gpu, results), copy_run(cpu, results)
    assert cli.main(["compare", str(base), str(new)]) == 0  # a GPU run and a CPU run: new and removed rows only
    assert cli.main(["profile", "--model", "v0", "--results", str(results), "--data-root", str(mnist_root)]) == 0
    capsys.readouterr()
    assert cli.main(["report", str(new)]) == 0
    markdown = check_report(new)
    profile = next((results / "profiles").iterdir())
    assert "## Comparison with another run" in markdown and "| model | device | variant | verdict |" in markdown
    assert f"(../profiles/{profile.name}/summary.md)" in markdown and "| category | ms/step | % of step |" in markdown
    assert (new / "plots" / "profile_breakdown.png").is_file()


def test_without_an_argument_the_report_is_of_results_latest(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    run = copy_run(COMMITTED_RUNS[-1], results)
    (results / "latest").symlink_to(run.name)
    monkeypatch.chdir(tmp_path)  # the default is relative to the working directory, never the repository's
    assert cli.main(["report"]) == 0
    assert capsys.readouterr().out.startswith("wrote results/latest/report.html, results/latest/report.md and ")
    check_report(run)


def test_without_mnist_the_report_says_so_and_draws_no_digits(tmp_path):
    folder = copy_run(FULL_RUNS[-1], tmp_path)
    report = run_page.build_report(folder, data_root=tmp_path / "no-mnist-here")
    assert "MNIST's test images are not available here" in report.markdown
    assert "plots/test_images.png" not in report.plots


def test_prediction_grid_titles_are_green_when_right_and_red_when_wrong(mnist_root):
    images, labels = load_split("test", mnist_root)
    rows = pd.DataFrame({"index": [0, 1, 2], "label": [int(labels[i]) for i in range(3)],
                         "predicted": [int(labels[0]), int(labels[1]), (int(labels[2]) + 1) % 10],
                         "probability": [0.9, 0.8, 0.4]})

    def pixels(color: str, data: bytes) -> int:
        rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=int)
        return int((np.abs(image - rgb).max(axis=2) < 40).sum())

    mixed = digits.prediction_grid(images, rows, "mixed")
    right = digits.prediction_grid(images, rows.iloc[:2], "right")
    assert pixels(digits.RIGHT, mixed) > 50 and pixels(digits.WRONG, mixed) > 50
    assert pixels(digits.WRONG, right) == 0


def test_markdown_to_html_keeps_tables_code_and_links_inside_the_page():
    markdown = ("# Title `x<y>`\n\nSee [the summary](summary.md) and [docs](https://example.org).\n\n"
                "| a | b \\| c | n |\n|---|---|---|\n| x | **bold** | 1.5× |\n\n- one\n- two\n\n```\n<code>\n```\n\n"
                "![plot](plots/p.png)\n![gone](plots/missing.png)\n")
    page = html.page(markdown, {"plots/p.png": b"\x89PNG"}, "t")
    assert '<h1 id="title-x-y">Title <code>x&lt;y&gt;</code></h1>' in page
    assert '<a href="summary.md">the summary</a>' in page and "docs (https://example.org)" in page
    assert '<th class="text">b | c</th>' in page and '<td class="text"><strong>bold</strong></td>' in page
    assert "<th>n</th>" in page and "<td>1.5×</td>" in page  # a column of numbers is right-aligned
    assert "<ul><li>one</li><li>two</li></ul>" in page and "<pre><code>&lt;code&gt;</code></pre>" in page
    assert page.count("<img ") == 1 and "[image not available: gone]" in page
