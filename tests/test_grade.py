"""`python -m icdl.grade`: a folder of submissions becomes a CSV of per-question outcomes.

Hostile submissions have their own file, tests/test_grade_hostile.py.
"""

import base64
import csv
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from hashlib import sha256
from pathlib import Path

import nbformat
import pytest
from icdl import exercises
from icdl.env import repo_root
from icdl.grade import expected_questions, guess_notebook, outcomes, run_notebook
from icdl.grading.harness import read_results
from icdl.grading.output import OutputError, check_target, csv_text, neutralise, safe_name
from icdl.grading.submissions import Submission, detect_exercise, read_all

ROOT = repo_root()
SOLUTIONS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def grade(folder: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "icdl.grade", str(folder), "--out", str(out), *options],
                          capture_output=True, text=True, cwd=out.parent, timeout=600)


def rows_of(out: Path) -> dict[str, dict]:
    with open(out, newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


def plant_wrong_answer_and_broken_cell(nb, question: str):
    """Make ``question``'s answer a function returning junk, and add a cell that raises after it."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        match = re.search(rf"^(.*\b{question}\.check\()(\w+)\)", cell.source, re.M)
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
    proc = grade(folder, out, "--notebook", name, "--timeout", "300")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = rows_of(out)
    assert list(rows) == ["alice.ipynb", "bob.ipynb", "carol.ipynb", "dave.ipynb"]
    assert list(next(iter(rows.values())))[:3 + len(questions)] == ["submission", "notebook", "status", *questions]
    n = str(len(questions))

    alice, bob, carol, dave = rows.values()
    assert (alice["status"], alice["score"], alice["out_of"]) == ("ok", n, n), alice
    assert all(alice[q] == "correct" for q in questions)
    assert (alice["hints"], alice["solutions"], alice["flags"]) == ("none", "none", "")
    assert (bob["status"], bob["score"]) == ("ok", "0"), bob
    assert all(bob[q] == "not attempted" for q in questions)
    assert carol["status"] == f"ok, errors in cells {broken_cell}"
    assert carol[questions[0]] == "incorrect" and carol["score"] == str(len(questions) - 1)
    assert all(carol[q] == "correct" for q in questions[1:])
    assert dave["status"].startswith("unreadable") and dave["score"] == "0"
    assert all(dave[q] == "missing" for q in questions)
    # The printed summary: one line per submission.
    assert re.search(rf"alice\.ipynb\s+{n}/{n}\s+C{{{n}}}\s+ok", proc.stdout), proc.stdout
    assert re.search(r"carol\.ipynb\s+\d+/\d+\s+xC+\s+ok, errors", proc.stdout), proc.stdout
    # Feedback: the check messages and the executed notebook, per student.
    feedback = tmp_path / "grades-feedback"
    assert f"{questions[0]}: incorrect" in (feedback / "carol.txt").read_text()
    executed = nbformat.read(feedback / "carol.executed.ipynb", as_version=4)
    assert len(executed.cells) == len(planted.cells)  # the grader's own cells are not in it
    assert "a learner's broken cell" in json.dumps(executed.cells[broken_cell - 1].outputs)


# --------------------------------------------------------------------------
# Tiny notebooks against exercise 01's first question
# --------------------------------------------------------------------------
EXERCISE = "01_cnn_basics"
IMPORT = f"from icdl.checks import ex{EXERCISE} as ex"
FAIR = textwrap.dedent("""
    def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
        return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
""")


def tiny(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb)


@pytest.fixture
def fair_is_q1():
    from icdl.checks import ex01_cnn_basics as ex

    ns = {}
    exec(FAIR, ns)
    if not ex.q1.evaluate(ns["conv_output_size"]):
        pytest.skip("exercise 01's first question is no longer conv_output_size")


def test_a_slow_notebook_is_cut_at_its_limit_and_still_graded(tmp_path, fair_is_q1):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "slow.ipynb").write_text(tiny(IMPORT, FAIR, "import time\ntime.sleep(30)", "x = 1",
                                            "ex.q1.hint()\nex.q1.hint('2')\nex.q1.solution()"))
    out = tmp_path / "grades.csv"
    proc = grade(folder, out, "--notebook", EXERCISE, "--timeout", "60", "--notebook-timeout", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = rows_of(out)["slow.ipynb"]
    assert re.fullmatch(r"ok, cell 3 interrupted after \d+ s; over the notebook's time limit: cells from 4 on not run",
                        row["status"]), row
    assert row["q1"] == "correct" and row["score"] == "1"
    assert (row["hints"], row["solutions"]) == ("none", "none")  # the cell asking for them never ran


def test_hints_and_solutions_asked_while_graded_are_recorded(tmp_path, fair_is_q1):
    folder = tmp_path / "subs"
    folder.mkdir()
    asks = "ex.q1.hint()\nex.q1.hint('2')\nex.q1.hint(2)\nex.q1.solution()"
    (folder / "a.ipynb").write_text(tiny(IMPORT, FAIR, asks))
    out = tmp_path / "grades.csv"
    assert grade(folder, out, "--notebook", EXERCISE).returncode == 0
    row = rows_of(out)["a.ipynb"]
    assert (row["q1"], row["hints"], row["solutions"]) == ("correct", "q1=2", "q1=1"), row
    executed = (tmp_path / "grades-feedback" / "a.executed.ipynb").read_text()
    assert "not available while the notebook is graded" in executed


def test_resume_keeps_unchanged_rows_and_grades_the_rest(tmp_path, fair_is_q1):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a.ipynb").write_text(tiny(IMPORT, FAIR))
    (folder / "b.ipynb").write_text(tiny(IMPORT))
    out = tmp_path / "grades.csv"
    assert grade(folder, out, "--notebook", EXERCISE).returncode == 0
    first = rows_of(out)
    assert (first["a.ipynb"]["score"], first["b.ipynb"]["score"]) == ("1", "0")
    # An interrupted run leaves the rows graded so far: mark a's row, change b, add c.
    text = out.read_text().replace(first["a.ipynb"]["seconds"], "123456", 1)
    out.write_text(text)
    (folder / "b.ipynb").write_text(tiny(IMPORT, FAIR))
    (folder / "c.ipynb").write_text(tiny(IMPORT, FAIR))
    proc = grade(folder, out, "--notebook", EXERCISE, "--resume")
    assert proc.returncode == 0, proc.stderr
    again = rows_of(out)
    assert again["a.ipynb"]["seconds"] == "123456"  # kept, not run again
    assert (again["b.ipynb"]["score"], again["c.ipynb"]["score"]) == ("1", "1")
    assert "graded a.ipynb" not in proc.stderr and "graded b.ipynb" in proc.stderr


def test_a_trained_model_is_scored_from_its_state_dict_in_a_clean_process(tmp_path):
    """A question with ``rebuild`` gets the answer's state_dict, never its forward: reading the labels does not help."""
    course = tmp_path / "course"
    shutil.copytree(ROOT / "utils" / "icdl", course / "utils" / "icdl",
                    ignore=shutil.ignore_patterns("__pycache__", "grading", "grade.py", "ex[0-9][0-9]_*.py"))
    (course / "utils" / "icdl" / "checks" / "ex98_demo.py").write_text(textwrap.dedent('''
        from .core import Incorrect, Question, register

        class Trained(Question):
            title = "a linear layer whose weight is the identity"
            answers = ("model",)

            @staticmethod
            def rebuild(state):
                from torch import nn
                model = nn.Linear(2, 2)
                model.load_state_dict(state)
                return model

            def verify(self, model):
                import torch
                x = torch.eye(2)
                if not torch.allclose(model(x), x + model.bias, atol=1e-6) or not torch.allclose(model.weight, x):
                    raise Incorrect("the weight is not the identity")

        q1 = Trained()
        QUESTIONS = register("98_demo", q1=q1)
    '''))
    folder = tmp_path / "subs"
    folder.mkdir()
    honest = ("import torch\nfrom torch import nn\nmodel = nn.Linear(2, 2)\nwith torch.no_grad():\n"
              "    model.weight.copy_(torch.eye(2))")
    cheat = ("import torch\nfrom torch import nn\nclass Cheat(nn.Linear):\n    def forward(self, x):\n"
             "        return x + self.bias\nmodel = Cheat(2, 2)")
    (folder / "honest.ipynb").write_text(tiny("import icdl.checks.ex98_demo as ex", honest))
    (folder / "cheat.ipynb").write_text(tiny("import icdl.checks.ex98_demo as ex", cheat))
    out = tmp_path / "grades.csv"
    proc = grade(folder, out, "--course", str(course), "--notebook", "98_demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = rows_of(out)
    assert rows["honest.ipynb"]["q1"] == "correct", rows
    assert rows["cheat.ipynb"]["q1"] == "incorrect", rows


# --------------------------------------------------------------------------
# The pieces, one at a time
# --------------------------------------------------------------------------
def test_run_notebook_stops_a_cell_that_runs_too_long(tmp_path):
    """run_notebook (not the grader) runs the course's own notebooks as they are."""
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
    # Only an exercise of the course is ever named, whatever the log or the file says.
    assert guess_notebook(Path("x.ipynb"), log[:1]) is None
    assert guess_notebook(Path("x.ipynb"), [{"notebook": "01_cnn_basics"}]) == "01_cnn_basics"
    assert guess_notebook(Path("smith_01_cnn_basics_v2.ipynb"), []) == "01_cnn_basics"


def test_the_exercise_is_only_ever_one_the_course_has():
    known = {"ex01_cnn_basics": "01_cnn_basics", "ex02_lenet": "02_lenet"}

    def sub(code, name="x.ipynb"):
        s = Submission(Path(name), name)
        s.cells = [{"cell_type": "code", "source": code}]
        return s

    assert detect_exercise(sub("from icdl.checks import ex02_lenet as ex"), known) == "02_lenet"
    assert detect_exercise(sub("import icdl.checks.ex01_cnn_basics as ex"), known) == "01_cnn_basics"
    assert detect_exercise(sub("from icdl.checks import ex99_planted as ex"), known) is None
    assert detect_exercise(sub("", "smith_02_lenet.ipynb"), known) == "02_lenet"


def test_submissions_are_read_safely_before_anything_runs(tmp_path):
    (tmp_path / "ok.ipynb").write_text(tiny("x = 1"))
    (tmp_path / "junk.ipynb").write_text("{not json")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "big.ipynb").write_text(tiny("x = '" + "a" * 5000 + "'"))
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "ok.ipynb")
    (tmp_path / "dir.ipynb").mkdir()
    os.mkfifo(tmp_path / "pipe.ipynb")  # opening it for reading would block
    found = {s.name: s for s in read_all(tmp_path, limit_bytes=4000)}
    assert found["ok.ipynb"].problem is None and found["ok.ipynb"].cells[0]["source"] == "x = 1"
    assert found["junk.ipynb"].problem.startswith("unreadable: not notebook JSON")
    assert found["list.ipynb"].problem == "unreadable: JSON, but not a notebook (no cells)"
    assert "over the" in found["big.ipynb"].problem
    assert found["link.ipynb"].problem == "unreadable: a symbolic link, not a file"
    assert found["dir.ipynb"].problem.startswith("unreadable: not a regular file")
    assert found["pipe.ipynb"].problem.startswith("unreadable: not a regular file")


def _signed(key: str, seq: int, entry: dict) -> str:
    body = base64.b64encode(json.dumps({**entry, "seq": seq}).encode()).decode()
    return f"ICDL-GRADE {seq} {body} {hmac.new(bytes.fromhex(key), f'{seq}:{body}'.encode(), sha256).hexdigest()}"


def test_only_lines_signed_with_this_submissions_key_and_nonce_count():
    key, other = "11" * 32, "22" * 32
    good = {"nonce": "n1", "kind": "result", "question": "q1", "outcome": "correct", "message": "", "hints": 0,
            "solutions": 0}
    text = "\n".join([
        _signed(key, 1, {"nonce": "n1", "kind": "start", "flags": []}),
        _signed(other, 2, good),  # another key
        _signed(key, 3, {**good, "nonce": "n0"}),  # another submission's nonce
        _signed(key, 4, {**good, "question": "q9"}),  # no such question
        _signed(key, 5, {**good, "outcome": "excellent"}),  # no such outcome
        "ICDL-GRADE 6 e30= " + "0" * 64,
    ])
    report = read_results(text, key, "n1", ["q1", "q2"])
    assert report.started and report.results == {} and report.forged == 3 and report.void is None
    report = read_results(text + "\n" + _signed(key, 7, good), key, "n1", ["q1", "q2"])
    assert report.results["q1"]["outcome"] == "correct"
    clash = _signed(key, 7, {**good, "outcome": "incorrect"})
    assert read_results(text + "\n" + _signed(key, 7, good) + "\n" + clash, key, "n1", ["q1"]).void


def test_csv_cells_are_never_formulas():
    assert neutralise("=1+1") == "'=1+1" and neutralise("@SUM(A1)") == "'@SUM(A1)" and neutralise("-2") == "'-2"
    assert neutralise("ok") == "ok" and neutralise(3) == 3
    text = csv_text([{"submission": "+cmd.ipynb", "notebook": "01_cnn_basics", "status": "ok", "q1": "correct",
                      "score": 1, "out_of": 1}])
    assert "'+cmd.ipynb" in text


def test_the_csv_target_is_checked_and_feedback_names_are_safe(tmp_path):
    check_target(tmp_path / "new.csv")  # may not exist yet
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to(tmp_path / "elsewhere")
    for bad in ("d", "l"):
        with pytest.raises(OutputError):
            check_target(tmp_path / bad)
    with pytest.raises(OutputError):
        check_target(tmp_path / "missing-folder" / "grades.csv")
    taken = set()
    names = [safe_name(n, taken) for n in ("../../etc/passwd.ipynb", "..bashrc.ipynb", '=HYPERLINK("x").ipynb',
                                           "etc passwd.ipynb", "etc_passwd.ipynb")]
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n) for n in names), names
    assert names == ["etc_passwd", "bashrc", "HYPERLINK_x_", "etc_passwd_2", "etc_passwd_3"]
