"""Notebook hygiene and the table of contents.

Notebooks are committed stripped (outputs belong to the book build), valid,
with one ``# Title``; every book notebook is in ``_toc.yml`` and every entry
of ``_toc.yml`` exists.
"""

import re
import shlex
import subprocess
import sys

import nbformat
import pytest
import yaml
from icdl.env import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted(p for d in ("chapters", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))
IDS = [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS]


def headings(nb):
    """(level, text) of every Markdown heading, skipping fenced code blocks."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if re.match(r"\s*(```|~~~|:::)", line):
                fenced = not fenced
            match = re.match(r"(#{1,6})\s+(.*)", line)
            if match and not fenced:
                found.append((len(match.group(1)), match.group(2).strip()))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_valid_and_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    with_outputs = [i for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and c.outputs]
    counted = [i for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and c.execution_count is not None]
    assert not with_outputs and not counted, (
        f"cells {with_outputs} have outputs, cells {counted} execution counts: run `nbstripout {path.name}`")
    proc = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, f"nbstripout --verify: {proc.stdout}{proc.stderr} (run `nbstripout {path.name}`)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_one_title_and_no_skipped_heading_levels(path):
    nb = nbformat.read(path, as_version=4)
    found = headings(nb)
    titles = [text for level, text in found if level == 1]
    assert len(titles) == 1, f"expected exactly one '# Title', found {titles}"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
        "the first cell must be markdown starting with '# Title'"
    for (before, _), (level, text) in zip(found, found[1:]):
        assert level <= before + 1, f"heading {'#' * level} {text!r} skips a level after a level-{before} heading"


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def test_every_toc_entry_exists():
    missing = [f for f in toc_files() if not any((ROOT / f"{f}{ext}").is_file() for ext in (".ipynb", ".md"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_book_notebook_is_in_the_toc_and_solutions_are_not():
    listed = set(toc_files())
    book = [p for p in NOTEBOOKS if p.parent.name in ("chapters", "exercises")]
    absent = [p.relative_to(ROOT).with_suffix("").as_posix() for p in book
              if p.relative_to(ROOT).with_suffix("").as_posix() not in listed]
    assert not absent, f"notebooks missing from _toc.yml: {absent}"
    assert not [f for f in listed if f.startswith("solutions/")], "solutions/ must stay out of the book"


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    ci_commands = [line.split("<")[0].strip() for line in ci.splitlines() if line.startswith("python -m pytest")]
    assert len(ci_commands) == 1, ".ci/run must run exactly one pytest command"
    readme = (ROOT / "README.md").read_text()
    assert f"&& {ci_commands[0]}\n" in readme, f"README's test command differs from .ci/run's {ci_commands[0]!r}"
    assert shlex.split(ci_commands[0])[:3] == ["python", "-m", "pytest"]
    assert "-r requirements-ci.txt -e utils" in ci and "set -euo pipefail" in ci


# --------------------------------------------------------------------------
# Prose is for learners: no development notes; results come from the run
# --------------------------------------------------------------------------
PAGES = sorted([*NOTEBOOKS, *(ROOT / "craft").glob("*.md"), *(ROOT / "practice").glob("*.md"),
                ROOT / "intro.md", ROOT / "instructors.md", ROOT / "README.md"])
# Words that belong in a commit message or an issue, never in a page a learner reads.
DEVELOPMENT_NOTES = [
    r"seed lesson", r"seed recipe", r"SEED_RECIPE", r"the seed's", r"on (the course|our) machine",
    r"an earlier (version|run)", r"no GPU was available", r"not yet measured", r"when this chapter was written",
    r"honest readings?", r"in an earlier run",
]


def page_text(path):
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    return path.read_text()


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_no_development_notes(path):
    text = page_text(path)
    found = [m.group(0) for pattern in DEVELOPMENT_NOTES for m in re.finditer(pattern, text, re.IGNORECASE)]
    assert not found, f"development notes in a learner's page: {found}"


def test_the_development_note_scan_can_fail(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("This figure is not yet measured: no GPU was available.")
    with pytest.raises(AssertionError, match="not yet measured"):
        test_no_development_notes(page)


GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([A-Za-z0-9_]+)")
GLUE_CALL = re.compile(r"""glue\(\s*(?:f?["'])([A-Za-z0-9_{}]+)["']""")


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent.name == "chapters"],
                         ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS if p.parent.name == "chapters"])
def test_glued_names_are_glued_in_the_same_notebook(path):
    """Every {glue:text}`name` in the prose is glued by a code cell of the same page (a typo fails here,
    in a second, instead of in the slow book build)."""
    nb = nbformat.read(path, as_version=4)
    used = {m.group(1) for c in nb.cells if c.cell_type == "markdown" for m in GLUE_ROLE.finditer(c.source)}
    calls = [m.group(1) for c in nb.cells if c.cell_type == "code" for m in GLUE_CALL.finditer(c.source)]
    exact = {name for name in calls if "{" not in name}
    patterns = [re.compile(re.sub(r"\{[^}]*\}", "[A-Za-z0-9_]+", name) + "$") for name in calls if "{" in name]
    missing = sorted(n for n in used if n not in exact and not any(p.match(n) for p in patterns))
    assert not missing, f"the text uses glued names that no code cell glues: {missing}"


TRAINING_CHAPTERS = [p for p in NOTEBOOKS if p.parent.name == "chapters" and "fit(" in page_text(p)]


@pytest.mark.parametrize("path", TRAINING_CHAPTERS, ids=[p.relative_to(ROOT).as_posix() for p in TRAINING_CHAPTERS])
def test_training_chapters_quote_results_through_glue(path):
    nb = nbformat.read(path, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert GLUE_ROLE.search(prose), "a chapter that trains quotes its results with {glue:text}, not typed numbers"
    assert "baselines." in page_text(path), "an accuracy is shown beside chance and a simple baseline (icdl.baselines)"
