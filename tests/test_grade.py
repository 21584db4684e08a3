"""`python -m icdl.grade`: a folder of submissions becomes a CSV of per-question outcomes."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from icdl import exercises
from icdl.env import repo_root
from icdl.grade import expected_questions, guess_notebook, outcomes, run_notebook

ROOT = repo_root()
SOLUTIONS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def plant_wrong_answer_and_broken_cell(nb, question: str):
    """Make ``question``'s answer a function returning junk, and add a cell that raises after it."""
    for index, cell in enumerate(nb.cells):
        match = re.search(rf"^(.*\b{question}\.check\()(\w+)\)", cell.source, re.M) if cell.cell_type == "code" else None
        if match:
            answer = match.group(2)
            cell.source = cell.source.replace(match.group(0), f"{answer} = lambda *a, **k: -1\n{match.group(0)}")
            nb.cells.insert(index + 1, nbformat.v4.new_code_cell('raise RuntimeError("a learner\'s broken cell")'))
            return index + 2  # 1-based number of the broken cell
    raise AssertionError(f"no cell calls {question}.check(answer)")


@pytest.mark.skipif(not SOLUTIONS, reason="no solution notebook yet")
def test_grade_a_folder_of_submissions(tmp_path):
    name = SOLUTIONS[0]
    questions = expected_questions(name)
    solution = exercises.read_notebook(ROOT / "solutions" / f"{name}.ipynb")
    folder = tmp_path / "submissions"
    folder.mkdir()
    nbformat.write(solution, folder / "alice.ipynb")
    nbformat.write(exercises.exercise_notebook(solution, name), folder / "bob.ipynb")
    planted = exercises.read_notebook(ROOT / "solutions" / f"{name}.ipynb")
    broken_cell = plant_wrong_answer_and_broken_cell(planted, questions[0])
    nbformat.write(planted, folder / "carol.ipynb")
    (folder / "dave.ipynb").write_text("this is not a notebook")

    out = tmp_path / "grades.csv"
    proc = subprocess.run([sys.executable, "-m", "icdl.grade", str(folder), "--notebook", name, "--out", str(out),
                           "--timeout", "300"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out, newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["alice.ipynb", "bob.ipynb", "carol.ipynb", "dave.ipynb"]
    assert list(next(iter(rows.values())))[:3 + len(questions)] == ["submission", "notebook", "status", *questions]
    n = str(len(questions))

    alice, bob, carol, dave = rows.values()
    assert (alice["status"], alice["score"], alice["out_of"]) == ("ok", n, n)
    assert all(alice[q] == "correct" for q in questions)
    assert (bob["status"], bob["score"]) == ("ok", "0")
    assert all(bob[q] == "not attempted" for q in questions)
    assert carol["status"] == f"ok, errors in cells {broken_cell}"
    assert carol[questions[0]] == "incorrect" and carol["score"] == str(len(questions) - 1)
    assert all(carol[q] == "correct" for q in questions[1:])
    assert dave["status"].startswith("unreadable") and dave["score"] == "0"
    assert all(dave[q] == "missing" for q in questions)
    # The printed summary: one line per submission.
    assert re.search(rf"alice\.ipynb\s+{n}/{n}\s+C{{{n}}}\s+ok", proc.stdout), proc.stdout
    assert re.search(r"carol\.ipynb\s+\d+/\d+\s+xC+\s+ok, errors", proc.stdout), proc.stdout


def test_a_cell_that_runs_too_long_times_out(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(30)")]
    nbformat.write(nb, tmp_path / "slow.ipynb")
    run = run_notebook(tmp_path / "slow.ipynb", timeout=2)
    assert run.status == "timed out (a cell ran over 2 s)" and run.checks == []


def test_outcomes_last_check_counts_and_missing():
    log = [{"notebook": "09_demo", "question": "q1", "outcome": "incorrect"},
           {"notebook": "09_demo", "question": "q1", "outcome": "correct"},
           {"notebook": "other", "question": "q2", "outcome": "correct"}]
    assert outcomes(log, "09_demo", ["q1", "q2"]) == {"q1": "correct", "q2": "missing"}
    assert guess_notebook(Path("x.ipynb"), log[:1]) == "09_demo"
    assert guess_notebook(Path("smith_01_cnn_basics_v2.ipynb"), []) == "01_cnn_basics"
