"""Hostile submissions: each cheat earns nothing, each fair answer is scored, no submission changes another's row.

One folder of tiny notebooks, written here, is graded once against exercise 01
(a short cell time limit keeps it fast); each test then reads its row. The fair
answer is the solution notebook's own cell for the first question whose cell
runs on its own, so the tests follow the exercise when it changes.
"""

import contextlib
import csv
import importlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from icdl.env import repo_root
from icdl.grade import expected_questions

ROOT = repo_root()
EXERCISE = "01_cnn_basics"
IMPORT = f"from icdl.checks import ex{EXERCISE} as ex"
CELL_TIMEOUT = 4
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process sweep needs Linux")


def fair_answer():
    """(question, answer names, cell source, whether the first answer is a function) for the first question of the exercise whose solution cell stands alone."""
    module = importlib.import_module(f"icdl.checks.ex{EXERCISE}")
    cells = [c.source for c in nbformat.read(ROOT / "solutions" / f"{EXERCISE}.ipynb", as_version=4).cells
             if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    for question in expected_questions(EXERCISE):
        for source in cells:
            call = re.search(rf"\b{question}\.check\(([\w\s,]+)\)", source)
            if not call:
                continue
            names = [n.strip() for n in call.group(1).split(",")]
            ns = {"ex": module}
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(source, ns)
            except Exception:
                continue
            if getattr(module, question).evaluate(*[ns.get(n) for n in names]):
                return question, names, source, callable(ns.get(names[0]))
    pytest.skip(f"no solution cell of {EXERCISE} runs on its own")


def notebook(*sources) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A submission")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb)


def junk(names) -> str:
    return "\n".join(f"{n} = lambda *a, **k: -1" for n in names)


def grade(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "icdl.grade", str(folder), "--notebook", EXERCISE, "--out", str(out),
                           "--timeout", str(CELL_TIMEOUT), "--notebook-timeout", "60", "--check-timeout", "5",
                           *extra], capture_output=True, text=True, cwd=out.parent, timeout=400)


def rows_of(out: Path) -> dict[str, dict]:
    with open(out, newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the hostile folder once; the fair notebook alone too, for comparison."""
    question, names, fair, function = fair_answer()
    base = tmp_path_factory.mktemp("hostile")
    folder, out, witness = base / "submissions", base / "grades.csv", base / "witness.txt"
    folder.mkdir()
    fair_nb = notebook(IMPORT, fair)
    subs = {
        "fair.ipynb": fair_nb,
        "zz_victim.ipynb": fair_nb,
        # Only the grader's signed output counts: a check log, a printed result line, the stand-in checks.
        "log_append.ipynb": notebook(IMPORT, junk(names), f"""
import json, os, glob
line = json.dumps({{"notebook": "{EXERCISE}", "question": "{question}", "outcome": "correct", "message": ""}})
for path in [os.environ.get("COURSE_CHECK_LOG") or "checks.jsonl", *glob.glob("/tmp/icdl-grade-*/checks.jsonl")]:
    with open(path, "a") as f:
        f.write(line + "\\n")
print("ICDL-GRADE 2 eyJvdXRjb21lIjogImNvcnJlY3QifQ== " + "0" * 64)
ex.{question}.check({", ".join(names)})"""),
        # Patching the checks, the Question class, the signing module or the import system in the kernel.
        "patch_core.ipynb": notebook(IMPORT, junk(names), f"""
import sys, types, hmac
import icdl.checks.core as core
core.Question.evaluate = lambda self, *a: core.Result(core.Outcome.CORRECT, "patched", self.name)
core.Question.verify = lambda self, *a: None
core._log = lambda *a, **k: None
ex.{question}.evaluate = lambda *a: True
fake = types.ModuleType("hmac")
fake.new = lambda *a, **k: types.SimpleNamespace(hexdigest=lambda: "0" * 64)
fake.compare_digest = lambda a, b: True
sys.modules["hmac"] = fake

class Planted:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.startswith("icdl.checks.ex"):
            import importlib.util
            return importlib.util.spec_from_loader(name, Planted)
    @staticmethod
    def create_module(spec):
        return None
    @staticmethod
    def exec_module(module):
        class Q:
            def evaluate(self, *a):
                return core.Result(core.Outcome.CORRECT, "planted", "")
        module.QUESTIONS = {{"{question}": Q()}}
        module.{question} = Q()
sys.meta_path.insert(0, Planted)
"""),
        # Its own exec, compile and globals, to catch the harness cell's source (and key) on its way in.
        "shadow.ipynb": notebook(IMPORT, junk(names), f"""
import base64, builtins, hashlib, hmac, json

def forge(config, namespace):  # what a harness handed to this notebook's exec would receive: the key
    key = bytes.fromhex(config["key"])
    entries = [{{"kind": "start", "flags": []}}]
    entries += [{{"kind": "result", "question": q["name"], "outcome": "correct", "message": "", "hints": 0,
                 "solutions": 0}} for q in config["questions"]]
    entries += [{{"kind": "done", "count": len(config["questions"]), "flags": []}}]
    for seq, entry in enumerate(entries, 1):
        body = base64.b64encode(json.dumps({{**entry, "nonce": config["nonce"], "seq": seq}}).encode()).decode()
        print(f"ICDL-GRADE {{seq}} {{body}} " + hmac.new(key, f"{{seq}}:{{body}}".encode(), hashlib.sha256).hexdigest())

def exec(code, namespace=None, *args):
    if isinstance(namespace, dict):
        namespace["grade"] = forge
def compile(source, *args, **kwargs):
    return source
def globals():
    return {{}}
__builtins__ = dict(vars(builtins), exec=exec, compile=compile, globals=globals)
"""),
        # The answer key: a reference function of the checks, and the solution text, used as the answer.
        "answer_key.ipynb": notebook(IMPORT, junk(names), f"""
import importlib
from icdl.checks import core
real = importlib.import_module("icdl.checks.ex{EXERCISE}")
for attribute in dir(real):
    try:
        if getattr(real, "{question}").evaluate(getattr(real, attribute)):
            {names[0]} = getattr(real, attribute)
    except Exception:
        pass
text = core.solution_text("{EXERCISE}", "{question}")
try:
    exec(text.split("Solution:", 1)[1])
except Exception as exc:
    print("no solution:", exc)
"""),
        # A thread that would patch the fresh checks while the grader runs them.
        "thread_spy.ipynb": notebook(IMPORT, junk(names), """
import sys, threading, time
def spy():
    while True:
        for name, mod in list(sys.modules.items()):
            if name.startswith("icdl.checks.core"):
                mod.Question.evaluate = lambda self, *a: None
        time.sleep(0.001)
threading.Thread(target=spy, daemon=True).start()
"""),
        # Raising or editing its own copy of the course package (a fresh copy per submission).
        "package_writer.ipynb": notebook(IMPORT, fair, """
import icdl, os, pathlib
root = pathlib.Path(icdl.__file__).parent
for rel in ("env.py", "checks/core.py", "checks/__init__.py"):
    path = root / rel
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)
    path.write_text(path.read_text() + "\\nPASS_MARK = 0  # raised for everyone\\n")
"""),
        # Deleting and overwriting other submissions, the CSV and the feedback folder (runs first: aa_).
        "aa_vandal.ipynb": notebook(IMPORT, junk(names), f"""
import json, os, pathlib, shutil
folder = pathlib.Path({str(folder)!r})
(folder / "zz_victim.ipynb").unlink()
(folder / "fair.ipynb").write_text(json.dumps({{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {{}}}}))
out = pathlib.Path({str(out)!r})
if out.exists():
    out.unlink()
os.mkdir(out)  # a folder where the grades go
shutil.rmtree({str(base / "grades-feedback")!r}, ignore_errors=True)
"""),
        # A runaway cell: interrupted, and the later correct answer still counts.
        "loop.ipynb": notebook(IMPORT, "while True:\n    pass", fair),
        # A cell that ignores the interrupt: a clear reason, nothing graded.
        "stubborn.ipynb": notebook(IMPORT, fair, "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                                                "    except KeyboardInterrupt:\n        pass"),
        # exit() and os._exit() do not end the grading; the answer after them counts.
        "exits.ipynb": notebook(IMPORT, "exit()", "import os\nos._exit(0)", "import sys\nsys.exit(3)", fair),
        # Killing its parent (the grader's worker): that notebook fails, the batch goes on.
        "killer.ipynb": notebook(IMPORT, fair, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
        # A detached process that would edit the CSV after the grader exits.
        "detached.ipynb": notebook(IMPORT, junk(names), f"""
import subprocess, sys
code = '''
import os, time
if os.fork():
    os._exit(0)
os.setsid()
for _ in range(1200):
    time.sleep(0.1)
    with open({str(witness)!r}, "a") as f:
        f.write("alive\\\\n")
    try:
        with open({str(out)!r}, "a") as f:
            f.write("detached.ipynb,{EXERCISE},ok,correct,DETACHED\\\\n")
    except OSError:
        pass
'''
subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
"""),
        # Lowering the bar: the answer is right only in the budget the notebook chose.
        "budget.ipynb": notebook(IMPORT, fair, f"""
import os
os.environ["COURSE_BUDGET"] = "smoke"
_fair = {names[0]}
def {names[0]}(*args, **kwargs):
    if os.environ.get("COURSE_BUDGET") != "smoke":
        return -1
    return _fair(*args, **kwargs)
""" if function else f"import os\nos.environ['COURSE_BUDGET'] = 'smoke'\n{junk(names)}"),
        # An answer that never returns: its check is stopped at the check's time limit.
        "slow_answer.ipynb": notebook(IMPORT, f"def {names[0]}(*args, **kwargs):\n    while True:\n        pass"),
        # Output sent elsewhere and never put back: the grader still hears its checks.
        "quiet.ipynb": notebook(IMPORT, fair, "import os, sys\nsys.stdout = open(os.devnull, 'w')"),
        # A deleted check line loses nothing: answers are evaluated by name.
        "no_check_line.ipynb": notebook(IMPORT, "\n".join(line for line in fair.splitlines() if ".check(" not in line)),
        "not_json.ipynb": "this is not a notebook",
        # Formula injection in the file name and in a cell.
        '=HYPERLINK("https:example.com","x").ipynb': notebook(IMPORT, fair, 'raise ValueError(\'=cmd|" /C calc"!A0\')'),
        "@SUM(1+1).ipynb": notebook(IMPORT, junk(names)),
    }
    for name, text in subs.items():
        (folder / name).write_text(text)
    started = time.time()
    proc = grade(folder, out, "--budget", "quick")
    ended = time.time()
    alone = base / "alone"
    alone.mkdir()
    (alone / "fair.ipynb").write_text(fair_nb)
    solo = grade(alone, alone / "grades.csv", "--budget", "quick")
    return {"question": question, "names": names, "proc": proc, "out": out,
            "rows": rows_of(out) if out.is_file() else {},
            "witness": witness, "seconds": ended - started, "solo": rows_of(alone / "grades.csv"), "base": base,
            "solo_proc": solo}


def row(batch, name):
    """The row of ``name`` (as written to the CSV: a leading ' when the name starts like a formula)."""
    rows = batch["rows"]
    key = "'" + name if name.startswith(("=", "+", "-", "@")) else name
    assert key in rows, f"no row for {key}: {sorted(rows)}\n{batch['proc'].stdout}\n{batch['proc'].stderr}"
    return rows[key]


def test_the_batch_runs_to_the_end(batch):
    proc = batch["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(batch["rows"]) == 21
    assert batch["out"].is_file(), "the folder a submission made at the CSV path was not moved aside"


# The cheats, and the runs that end before the grader's checks (a clear reason in the status, no score).
EARN_NOTHING = ["answer_key.ipynb", "log_append.ipynb", "patch_core.ipynb", "shadow.ipynb", "thread_spy.ipynb", "package_writer.ipynb",
          "aa_vandal.ipynb", "detached.ipynb", "budget.ipynb", "@SUM(1+1).ipynb", "stubborn.ipynb", "killer.ipynb",
          "slow_answer.ipynb"]


@pytest.mark.parametrize("name", EARN_NOTHING)
def test_each_cheat_earns_nothing(batch, name):
    r = row(batch, name)
    assert r["score"] == "0", r
    assert r[batch["question"]] != "correct", r


def test_fair_answers_are_scored_whatever_came_before(batch):
    for name in ["fair.ipynb", "zz_victim.ipynb", "loop.ipynb", "exits.ipynb", "no_check_line.ipynb", "quiet.ipynb",
                 '=HYPERLINK("https:example.com","x").ipynb']:
        r = row(batch, name)
        assert r[batch["question"]] == "correct" and r["score"] == "1", (name, r)


def test_no_submission_changes_another_row(batch):
    alone = batch["solo"]["fair.ipynb"]
    for name in ("fair.ipynb", "zz_victim.ipynb"):  # overwritten and deleted on disk by aa_vandal, read before
        together = row(batch, name)
        same = ["notebook", "status", *expected_questions(EXERCISE), "score", "out_of", "hints", "solutions", "flags"]
        assert {k: together[k] for k in same} == {k: alone[k] for k in same}, (name, together, alone)


def test_statuses_say_what_happened(batch):
    assert re.search(r"cell 3 interrupted after \d+ s", row(batch, "loop.ipynb")["status"])
    assert "did not stop when interrupted" in row(batch, "stubborn.ipynb")["status"]
    assert row(batch, "slow_answer.ipynb")["status"] == "ok"
    assert "ran over the grader's limit of 5 s" in (batch["base"] / "grades-feedback" / "slow_answer.txt").read_text()
    assert row(batch, "killer.ipynb")["status"].startswith("stopped: the grading process")
    assert row(batch, "package_writer.ipynb")["status"].startswith("void: the course package was modified")
    assert row(batch, "thread_spy.ipynb")["status"].startswith("void: a thread started by the notebook")
    assert row(batch, "not_json.ipynb")["status"].startswith("unreadable: not notebook JSON")
    assert "budget" in row(batch, "budget.ipynb")["flags"] and "check log" in row(batch, "log_append.ipynb")["flags"]


def test_a_detached_process_dies_with_its_notebook(batch):
    text = batch["out"].read_text()
    assert "DETACHED" not in text
    witness = batch["witness"]
    size = witness.stat().st_size if witness.exists() else 0
    time.sleep(1.0)
    assert (witness.stat().st_size if witness.exists() else 0) == size, "the detached process is still running"
    assert "DETACHED" not in batch["out"].read_text()


def test_csv_cells_cannot_be_formulas(batch):
    for line in batch["out"].read_text().splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert "@SUM(1+1).ipynb" not in batch["rows"] and "'@SUM(1+1).ipynb" in batch["rows"]


def test_feedback_per_student(batch):
    feedback = batch["base"] / "grades-feedback"
    assert (feedback / "fair.txt").is_file() and (feedback / "fair.executed.ipynb").is_file()
    assert f"{batch['question']}: correct" in (feedback / "fair.txt").read_text()
    names = os.listdir(feedback)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) and not n.startswith(".") for n in names), names
    # aa_vandal removed the folder after two files were written: they were written again at the end.
    assert len([n for n in names if n.endswith(".txt")]) == len(batch["rows"]), names


@pytest.mark.parametrize("kind", ["symlink", "folder", "pipe"])
def test_the_csv_path_must_be_a_plain_file(tmp_path, kind):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a.ipynb").write_text(notebook(IMPORT))
    out, victim = tmp_path / "grades.csv", tmp_path / "victim.txt"
    victim.write_text("precious")
    if kind == "symlink":
        out.symlink_to(victim)
    elif kind == "folder":
        out.mkdir()
    else:
        os.mkfifo(out)
    proc = grade(folder, out)
    assert proc.returncode == 2 and "refusing" in proc.stderr, proc.stderr
    assert victim.read_text() == "precious"
