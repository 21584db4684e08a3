"""Every check of every exercise notebook, end to end in a real kernel (smoke budget).

* ``solutions/NN``: every question registered in ``icdl.checks.exNN`` is
  checked and found correct.
* ``exercises/NN``, untouched: the notebook runs to the end and every question
  is checked and reported "not attempted" (none correct, none crashing).

Each notebook runs once, in its own kernel, through the same code the grader
uses (:func:`icdl.grade.run_notebook`).
"""

import pytest
from icdl.env import repo_root
from icdl.grade import expected_questions, outcomes, run_notebook

ROOT = repo_root()
NAMES = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def run(folder: str, name: str):
    path = ROOT / folder / f"{name}.ipynb"
    if not path.is_file():
        pytest.fail(f"{folder}/{name}.ipynb is missing: run `python -m icdl.exercises generate`")
    result = run_notebook(path, timeout=300, allow_errors=False)
    assert result.status == "ok", f"{folder}/{name}.ipynb did not run to the end: {result.status}"
    return outcomes(result.checks, name, expected_questions(name)), result.checks


@pytest.mark.parametrize("name", NAMES)
def test_solution_answers_are_all_correct(name):
    marks, log = run("solutions", name)
    wrong = {q: o for q, o in marks.items() if o != "correct"}
    messages = [f"{e['question']}: {e['message']}" for e in log if e["outcome"] != "correct"]
    assert not wrong, f"solutions/{name}: {wrong}\n" + "\n".join(messages)


@pytest.mark.parametrize("name", NAMES)
def test_untouched_exercise_runs_and_every_check_says_not_attempted(name):
    marks, log = run("exercises", name)
    assert marks == dict.fromkeys(marks, "not attempted"), f"exercises/{name}: {marks}"
    assert all(e["outcome"] == "not attempted" for e in log), "a check of an untouched exercise said otherwise"
