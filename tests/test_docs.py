"""The docs say what is true: the package's docstring examples run and print what they say; the README
stays a five-minute page that opens with `make bench` and `make test` and maps the package's rooms in
their layer order; every command in a code block of the README and docs/ is real; every relative link
resolves; and every page of docs/results/ holds the blocks its tools write (docs/results/README.md)."""

from __future__ import annotations

import contextlib
import doctest
import functools
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

import mnist_models
from mnist_models.cli.commands import reproduce, scaling, speedup, tta
from mnist_models.cli.main import COMMANDS, build_parser
from mnist_models.report.markers import has_markers
from mnist_models.report.readme import spliced

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(mnist_models.__file__).parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [README, ROOT / "bench" / "README.md", *DOCS]
RESULTS = ROOT / "docs" / "results"
KIND_PAGES = sorted(page for page in RESULTS.glob("*.md") if page.name != "README.md")
BLOCKS = ("bench-summary", reproduce.MARKER, speedup.MARKER, tta.MARKER, scaling.MARKER)
MAX_README_LINES = 200


def module_name(path: Path) -> str:
    """``mnist_models/train/oom.py`` → ``mnist_models.train.oom``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("mnist_models", *(parts[:-1] if parts[-1] == "__init__" else parts)))


# Only modules with an example are collected (``>>>`` in their source): the rest have nothing to run.
EXAMPLES = sorted(module_name(path) for path in PACKAGE.rglob("*.py") if ">>>" in path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": importlib.import_module("torch")})
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} docstring example(s) in {name} failed"


def text_of(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def code_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks of a Markdown text, in order."""
    return re.findall(r"^```[\w-]*\n(.*?)^```", text, re.M | re.S)


def test_the_readme_is_short_and_opens_with_the_two_commands() -> None:
    text = text_of(README)
    assert len(text.splitlines()) <= MAX_README_LINES
    assert text.index("```") < text.index("\n## "), "the two commands come before the first section"
    commands = [line.split("#", 1)[0].strip() for line in code_blocks(text)[0].splitlines() if line.strip()]
    assert commands[:2] == ["make bench", "make test"]


def test_the_readme_holds_no_generated_block() -> None:
    assert not re.search(r"<!-- [\w@-]+:start -->", text_of(README)), "generated blocks live in docs/results/"


def test_the_readme_maps_every_room_in_layer_order() -> None:
    """The layout map names each subpackage and top-level module once, in the order of the layers
    contract that ``make lint`` holds (pyproject.toml), and names nothing that does not exist."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    contract = re.search(r'type = "layers"\s*layers = \[(.*?)\]', pyproject, re.S)
    assert contract is not None
    layers = re.findall(r'"mnist_models\.(\w+)"', contract.group(1))
    block = next(body for body in code_blocks(text_of(README)) if body.startswith("mnist_models/"))
    mapped = [name.removesuffix(".py") for name in re.findall(r"^  (\w+/|\w+\.py) ", block, re.M)]
    assert [name.rstrip("/") for name in mapped] == layers
    rooms = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    rooms |= {path.stem for path in PACKAGE.glob("*.py") if not path.stem.startswith("__")}
    assert rooms == set(layers)


@functools.cache
def options(command: str) -> frozenset[str]:
    """The long options a ``mnist-bench`` command's --help lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return frozenset(re.findall(r"--[a-z][a-z0-9-]*", out.getvalue()))


@functools.cache
def bench_options() -> frozenset[str]:
    return frozenset(re.findall(r'addoption\("(--bench-[a-z-]+)"', text_of(ROOT / "bench" / "conftest.py")))


@functools.cache
def make_targets() -> frozenset[str]:
    return frozenset(re.findall(r"^([a-z][\w-]*):", text_of(ROOT / "Makefile"), re.M))


def shell_commands() -> list[tuple[str, str]]:
    """(page, command) for every command line of every code block of the README and docs/."""
    found = []
    for page in PAGES:
        for block in code_blocks(text_of(page)):
            for line in block.splitlines():
                line = re.split(r"\s#\s", line, maxsplit=1)[0].strip()
                found += [(page.relative_to(ROOT).as_posix(), part.strip())
                          for part in re.split(r" \| | && ", line) if part.strip()]
    return found


def check_command(command: str) -> None:
    """Raise AssertionError where a command names a tool, target, option or script that does not exist."""
    words = command.split()
    if words[0] == "make":
        words = shlex.split(command)  # BENCH_ARGS="--bench-models v2 …" is one word
    if words[0].endswith("mnist-bench") or words[:3] == ["python", "-m", "mnist_models"]:
        name = words[3] if words[0] == "python" else words[1]
        assert name in COMMANDS, f"no command {name!r}"
        unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", command)) - options(name)
        assert not unknown, f"{name} has no option {sorted(unknown)}"
    elif words[0] == "make":
        assert {w for w in words[1:] if "=" not in w and not w.startswith("-")} <= make_targets()
    elif words[0] == "bash":
        assert (ROOT / words[1]).is_file(), f"no script {words[1]}"
    if words[0] == "make" or "pytest bench" in command:
        unknown = set(re.findall(r"--bench-[a-z-]+", command)) - bench_options()
        assert not unknown, f"the suite has no option {sorted(unknown)}"


def test_every_command_in_the_docs_is_real() -> None:
    commands = shell_commands()
    assert any(c.startswith("mnist-bench ") for _, c in commands) and any(c.startswith("make ") for _, c in commands)
    failures = []
    for page, command in commands:
        try:
            check_command(command)
        except AssertionError as exc:
            failures.append(f"{page}: {command}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("command", ["mnist-bench train --modle v2", "mnist-bench fit --model v2",
                                     "make benchmark", "pytest bench --bench-colour red", "bash .ci/none"])
def test_a_command_that_is_not_real_is_caught(command: str) -> None:
    with pytest.raises(AssertionError):
        check_command(command)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a Markdown page's headings: lower case, punctuation dropped, spaces → '-'."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text_of(page), flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", text_of(page), flags=re.M | re.S)  # commands, not links
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken_links(page)


def test_a_broken_link_is_caught(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading) [gone](missing.md) [no anchor](there.md#elsewhere) [web](https://x.org)\n"
                    "```\n[in code](nowhere.md)\n```\n", encoding="utf-8")
    assert broken_links(page) == ["missing.md", "there.md#elsewhere (no such heading)"]


def test_the_results_index_lists_every_machine_kind_page() -> None:
    index = text_of(RESULTS / "README.md")
    assert KIND_PAGES and all(f"]({page.name})" in index for page in KIND_PAGES)


@pytest.mark.parametrize("page", KIND_PAGES, ids=lambda page: page.stem)
def test_a_results_page_holds_the_blocks_its_tools_write(page: Path) -> None:
    """Each tool's block once, only this machine kind's sub-blocks in it, each titled with the kind, and
    each exactly what the tool would write back: re-splicing a sub-block's body leaves the page as it is."""
    text, kind = text_of(page), page.stem
    assert re.fullmatch(r"(cpu|gpu)-[a-z0-9-]+", kind)
    for name in BLOCKS:
        assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1
        assert has_markers(page, name)
    assert {found for found in re.findall(r"<!-- [\w-]+@([\w-]+):(?:start|end) -->", text)} <= {kind}
    subs = re.findall(r"<!-- ([\w-]+)@[\w-]+:start -->\n(.*?)\n<!-- \1@[\w-]+:end -->", text, re.S)
    assert len(subs) == len(re.findall(r"@[\w-]+:start -->", text))
    for name, body in subs:
        assert name in BLOCKS and f"· kind `{kind}` ·" in body.splitlines()[0]
        inner = text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
        assert body in inner, f"{name}@{kind} sits outside its block"
        assert spliced(page, name, body, kind) == text
