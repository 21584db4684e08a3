"""``python -m icdl.grade``: grade a folder of submitted exercise notebooks.

Usage::

    python -m icdl.grade SUBMISSIONS_DIR [--notebook 02_lenet] [--out grades.csv] [--feedback DIR]
                         [--budget smoke] [--timeout 600] [--notebook-timeout 1800] [--check-timeout 300]
                         [--max-size 20] [--resume]

Every submission is read before any runs. Each then runs alone: in a new
process session, in its own scratch folder, against its own copy of the course
package (without solutions, the exercise checks replaced by stand-ins), in a
fresh kernel, with the grader's set-up cell first and the grader's harness cell
last. The harness imports the real checks afresh, evaluates each question on
the notebook's variables by name, and prints signed results; only those count,
never the notebook's own ``check()`` calls. Afterwards every process the
submission left behind is killed.

A cell that runs over ``--timeout`` seconds is interrupted and the next cell
runs; the submission's cells together get ``--notebook-timeout`` seconds; each
question's check gets ``--check-timeout`` seconds. The CSV is rewritten, whole
and atomically, after each notebook; ``--resume`` skips submissions already in
it with the same content. Feedback (the check messages, one text file per
student, and the executed notebook) goes to ``--feedback``.

Columns: submission, notebook, status; one per question (``correct``,
``incorrect``, ``not attempted``, ``uncheckable``, ``missing``: the answer's
variable is not defined or its check never finished, or ``void``: the results
were discarded, the status says why); score (questions correct), out_of;
hints and solutions asked for while graded (``q1=2 q3=1``; ``none``; ``not
recorded`` when the run ended before the harness); flags (constructs a fair
answer does not need, for a look: they do not change the score); seconds;
sha256 of the submission.

Grading runs other people's code. This keeps submissions apart from each other
and from the grade; it is not a security boundary against a determined attacker
with your user's rights: see instructors.md for what still needs a container.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from . import procs
from .course import Course, CourseError, Exercise, make_writable
from .harness import harness_cell, new_secret, read_results, setup_cell
from .output import OutputError, check_target, feedback_text, read_csv, safe_name, summary, write_atomic, write_csv
from .submissions import Submission, detect_exercise, read_all, scan_flags

BUDGETS = ("smoke", "quick", "full")
WORKER_SOURCE = (Path(__file__).parent / "worker.py").read_text(encoding="utf-8")
KERNEL_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "SYSTEMROOT", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH",
                   "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "COURSE_DEVICE", "COURSE_DATA",
                   "SSL_CERT_FILE", "SSL_CERT_DIR")

_SCORER = r"""
import hashlib, json, os, sys
job = json.loads(sys.stdin.read())
os.environ["COURSE_BUDGET"] = job["budget"]
try:
    data = open(job["path"], "rb").read()
    if hashlib.sha256(data).hexdigest() != job["sha256"]:
        raise RuntimeError("the saved state_dict was changed after the harness wrote it")
    import importlib, io, torch
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    mod = importlib.import_module("icdl.checks." + job["module"])
    table = getattr(mod, "QUESTIONS", None)
    question = table[job["question"]]
    model = question.rebuild(state)
    result = question.evaluate(model)
    out = {"outcome": str(getattr(result.outcome, "value", result.outcome)), "message": str(result.message)}
except Exception as exc:
    out = {"outcome": "incorrect",
           "message": f"The saved model could not be scored: {type(exc).__name__}: {exc}"[:2000]}
sys.stdout.write(json.dumps(out))
"""


def default_data_dirs() -> dict[str, str]:
    """Where the course's data and torchvision's weights are, as absolute paths (the kernel gets its own HOME)."""
    home = Path.home()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return {"COURSE_DATA_DIR": str(Path(os.environ.get("COURSE_DATA_DIR") or cache / "icdl" / "data").expanduser()),
            "TORCH_HOME": str(Path(os.environ.get("TORCH_HOME") or cache / "torch").expanduser())}


class Grader:
    def __init__(self, course: Course, *, budget: str = "smoke", cell_timeout: int = 600,
                 notebook_timeout: int = 1800, check_timeout: int = 300, max_output: int = 20_000,
                 feedback: Path | None = None):
        self.course = course
        self.budget = budget
        self.cell_timeout = cell_timeout
        self.notebook_timeout = notebook_timeout
        self.check_timeout = check_timeout
        self.max_output = max_output
        self.feedback = feedback
        self._feedback_names: set[str] = set()
        self._feedback_written: dict[str, bytes] = {}  # file name -> compressed contents, to restore at the end

    # -- one submission ------------------------------------------------------
    def grade(self, sub: Submission, exercise: Exercise) -> tuple[dict, dict[str, str], list[str], dict | None]:
        """Run and grade one submission: (row, messages per question, notes, executed cells)."""
        questions = exercise.question_names
        key, nonce = new_secret()
        scratch = Path(tempfile.mkdtemp(prefix="icdl-grade-"))
        try:
            course_dir = scratch / "course"
            package = course_dir / "utils"
            work, home, tmp, state = course_dir / "work", scratch / "home", scratch / "tmp", scratch / "state"
            for folder in (work, home, tmp, state):
                folder.mkdir(parents=True)
            self.course.write_package(package)
            os.chmod(course_dir, 0o555)
            config = {"key": key, "nonce": nonce, "module": exercise.module, "budget": self.budget,
                      "check_timeout": self.check_timeout, "package": str(package),
                      "checks": self.course.checks_sources(exercise.name), "manifest": self.course.manifest(),
                      "questions": [{"name": q.name, "answers": q.answers, "rebuild": q.rebuild}
                                    for q in exercise.questions],
                      "state_dir": str(state), "scratch": [str(work), str(home), str(tmp)],
                      "hidden_memory": procs.LINUX}
            cells = ([{"cell_type": "code", "source": setup_cell(self.budget)}] + sub.cells
                     + [{"cell_type": "code", "source": harness_cell(config)}])
            job = {"notebook": json.dumps(_notebook(cells)), "cwd": str(work),
                   "env": self._kernel_env(package, home, tmp),
                   "cell_timeout": self.cell_timeout, "notebook_timeout": self.notebook_timeout,
                   "harness_timeout": self.check_timeout * max(1, len(questions)) + 120, "grace": 5,
                   "max_output": self.max_output}
            run = self._run_worker(job, scratch)
            procs.kill_descendants()  # before anything is read: nothing the submission started may still run
            report = read_results(run.get("harness", {}).get("text", ""), key, nonce, questions)
            row, messages, notes = self._row(sub, exercise, run, report, state)
        finally:
            procs.kill_descendants()
            make_writable(scratch)
            shutil.rmtree(scratch, ignore_errors=True)
        return row, messages, notes, run

    def _kernel_env(self, package: Path, home: Path, tmp: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if k in KERNEL_ENV_KEEP or k.startswith("LC_")}
        env.update(default_data_dirs())
        env.update(HOME=str(home), TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp), PYTHONPATH=str(package),
                   PYTHONDONTWRITEBYTECODE="1", IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".mpl"),
                   MPLBACKEND="Agg", TQDM_DISABLE="1", COURSE_BUDGET=self.budget, COURSE_GRADING="1")
        return env

    def _run_worker(self, job: dict, scratch: Path) -> dict:
        limit = self.notebook_timeout + job["harness_timeout"] + self.cell_timeout + 120
        proc = subprocess.Popen([sys.executable, "-c", WORKER_SOURCE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=scratch, start_new_session=True)
        try:
            out, err = proc.communicate(json.dumps(job).encode("utf-8"), timeout=limit)
        except subprocess.TimeoutExpired:
            procs.kill_group(proc.pid)
            proc.kill()
            proc.communicate()
            return {"stopped": f"the grading of this notebook ran over {limit} s and was stopped", "seconds": limit}
        finally:
            procs.kill_group(proc.pid)
        try:
            run = json.loads(out.decode("utf-8"))
            if not isinstance(run, dict):
                raise ValueError
        except ValueError:
            code = proc.returncode
            why = (f"was killed (signal {-code})" if code and code < 0
                   else f"ended without a result (exit status {code})")
            detail = err.decode("utf-8", "replace").strip().splitlines()[-3:] if err else []
            return {"stopped": f"the grading process of this notebook {why}", "worker_stderr": detail}
        return run

    def _row(self, sub, exercise, run, report, state_dir) -> tuple[dict, dict[str, str], list[str]]:
        questions = exercise.question_names
        marks, messages, notes = {}, {}, []
        hints, solutions = {}, {}
        for q in questions:
            result = report.results.get(q)
            if result is None:
                marks[q] = "missing"
                why = ("its check did not finish before the grader's limit" if report.running == q
                       else "the grader's check did not reach it")
                messages[q] = f"Not graded: {why}."
                continue
            outcome, message = result["outcome"], result["message"]
            if outcome == "pending":
                outcome, message = self._score_saved(exercise, q, state_dir / f"{q}.pt", result["sha256"])
            marks[q], messages[q] = outcome, message
            hints[q], solutions[q] = result["hints"], result["solutions"]
        status = _status(run, report)
        if report.void:
            marks = dict.fromkeys(questions, "void")
            status = f"void: {report.void}"
        elif report.fatal:
            status = f"{status}; the checks failed to load (a course bug): {report.fatal}"
        if report.forged:
            notes.append(f"{report.forged} line(s) imitating the grader's output were ignored.")
        score = sum(v == "correct" for v in marks.values())
        recorded = report.started and not report.void
        row = {"submission": sub.name, "notebook": exercise.name, "status": status, **marks, "score": score,
               "out_of": len(questions),
               "hints": _usage(hints) if recorded else "not recorded",
               "solutions": _usage(solutions) if recorded else "not recorded",
               "flags": " ".join(sorted(set(sub.flags) | ({"kernel flags"} if report.flags else set()))),
               "seconds": run.get("seconds", 0), "sha256": sub.sha256}
        notes += report.flags
        return row, messages, notes

    def _score_saved(self, exercise: Exercise, question: str, path: Path, digest: str):
        """Score a trained model from its saved state_dict in a fresh process that runs no notebook code."""
        with tempfile.TemporaryDirectory(prefix="icdl-grade-score-") as clean:
            self.course.write_package(Path(clean), stubs=False, read_only=False)
            env = {k: v for k, v in os.environ.items() if k in KERNEL_ENV_KEEP or k.startswith("LC_")}
            env.update(default_data_dirs(), PYTHONPATH=clean, HOME=clean, COURSE_BUDGET=self.budget,
                       PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg", TQDM_DISABLE="1")
            job = {"path": str(path), "sha256": digest, "module": exercise.module, "question": question,
                   "budget": self.budget}
            try:
                proc = subprocess.run([sys.executable, "-c", _SCORER], input=json.dumps(job), capture_output=True,
                                      text=True, cwd=clean, env=env, timeout=self.check_timeout + 60,
                                      start_new_session=True)
                out = json.loads(proc.stdout)
            except (subprocess.TimeoutExpired, ValueError):
                return "uncheckable", "The grader could not score the saved model (a course bug: please report it)."
        outcome = out.get("outcome")
        if outcome not in ("correct", "incorrect", "not attempted", "uncheckable"):
            return "uncheckable", "The grader's scorer gave no valid outcome."
        return outcome, str(out.get("message", ""))[:4000]

    # -- feedback ------------------------------------------------------------
    def write_feedback(self, row: dict, messages: dict[str, str], notes: list[str], run: dict | None,
                       questions: list[str]) -> None:
        if self.feedback is None:
            return
        stem = safe_name(str(row["submission"]), self._feedback_names)
        files = {f"{stem}.txt": feedback_text(row, questions, messages, notes + run_notes(run))}
        if run and run.get("cells") is not None:
            files[f"{stem}.executed.ipynb"] = json.dumps(_notebook(run["cells"]), indent=1)
        for name, text in files.items():
            self._feedback_written[name] = zlib.compress(text.encode("utf-8"))
            self._write_feedback_file(name, text)

    def _write_feedback_file(self, name: str, text: str) -> bool:
        try:
            check_target(self.feedback, folder=True)
            self.feedback.mkdir(exist_ok=True)  # again: a submission may have removed it
            write_atomic(self.feedback / name, text, intruders_aside=True)
            return True
        except (OutputError, OSError) as exc:
            print(f"warning: could not write feedback {name}: {exc}", file=sys.stderr)
            return False

    def restore_feedback(self) -> int:
        """Rewrite every feedback file that is gone or changed since it was written; returns how many."""
        restored = 0
        for name, packed in self._feedback_written.items():
            data = zlib.decompress(packed)
            path = self.feedback / name
            try:
                same = not path.is_symlink() and path.is_file() and path.read_bytes() == data
            except OSError:
                same = False
            if not same and self._write_feedback_file(name, data.decode("utf-8")):
                restored += 1
        return restored


def _notebook(cells: list[dict]) -> dict:
    out = []
    for cell in cells:
        entry = {"cell_type": cell["cell_type"], "metadata": {}, "source": cell["source"]}
        if cell["cell_type"] == "code":
            entry.update(execution_count=None, outputs=cell.get("outputs", []))
        out.append(entry)
    return {"cells": out, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def run_notes(run: dict | None) -> list[str]:
    """Details of the run for the feedback file (not the CSV)."""
    if not run:
        return []
    notes = []
    if run.get("worker_stderr"):
        notes.append("The grading process said: " + " | ".join(run["worker_stderr"])[:600])
    return notes


def _usage(counts: dict[str, int]) -> str:
    used = [f"{q}={n}" for q, n in counts.items() if n]
    return " ".join(used) if used else "none"


def _status(run: dict, report) -> str:
    parts = []
    if run.get("errors"):
        parts.append(f"errors in cells {', '.join(map(str, run['errors']))}")
    for number, seconds in run.get("interrupted", []):
        parts.append(f"cell {number} interrupted after {seconds} s")
    if run.get("skipped_from"):
        parts.append(f"over the notebook's time limit: cells from {run['skipped_from']} on not run")
    if run.get("stopped"):
        parts.append(run["stopped"])
        if not report.started:
            parts.append("nothing could be graded")
    elif run.get("harness", {}).get("ran") and not report.done and not report.void:
        which = f" (in the check of {report.running})" if report.running else ""
        parts.append(f"the grader's checks did not finish{which}")
    elif not report.started and not run.get("stopped"):
        parts.append("the grader's checks printed nothing")
    if not parts:
        return "ok"
    if run.get("stopped") or not report.started:
        return "stopped: " + "; ".join(parts)
    return "ok, " + "; ".join(parts)


def unreadable_row(sub: Submission, exercise: Exercise | None, problem: str) -> dict:
    questions = exercise.question_names if exercise else []
    return {"submission": sub.name, "notebook": exercise.name if exercise else "?", "status": problem,
            **dict.fromkeys(questions, "missing"), "score": 0, "out_of": len(questions),
            "hints": "not recorded", "solutions": "not recorded", "flags": " ".join(sub.flags), "seconds": 0,
            "sha256": sub.sha256}


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    from ..env import repo_root

    parser = argparse.ArgumentParser(prog="python -m icdl.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--notebook", help="the exercise, e.g. 02_lenet (default: recognised per submission)")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    parser.add_argument("--feedback", type=Path,
                        help="folder for one feedback file and one executed notebook per submission "
                             "(default: the CSV's name with -feedback, beside it)")
    parser.add_argument("--budget", choices=BUDGETS, default=None,
                        help="budget the answers are checked in (default: COURSE_BUDGET, else smoke)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--notebook-timeout", type=int, default=1800,
                        help="seconds allowed for all of a submission's cells (default 1800)")
    parser.add_argument("--check-timeout", type=int, default=300, help="seconds allowed per question's check")
    parser.add_argument("--max-size", type=float, default=20, help="largest submission read, in MB (default 20)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out for unchanged submissions and grade the rest")
    parser.add_argument("--course", type=Path, default=None,
                        help="the course checkout whose checks grade (default: this one)")
    args = parser.parse_args(argv)

    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    budget = args.budget or (os.environ.get("COURSE_BUDGET", "").strip().lower() or "smoke")
    if budget not in BUDGETS:
        parser.error(f"COURSE_BUDGET={budget!r} is not one of {', '.join(BUDGETS)}")
    feedback = args.feedback or args.out.with_name(args.out.stem + "-feedback")
    try:
        check_target(args.out)
        check_target(feedback, folder=True)
        previous = read_csv(args.out) if args.resume else []
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.path.lexists(args.out) and not args.resume:
        print(f"note: {args.out} exists and will be replaced (use --resume to keep its rows)", file=sys.stderr)
    try:
        course = Course.load(args.course or repo_root())
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.notebook and args.notebook not in course.exercises:
        parser.error(f"no exercise {args.notebook!r}; known: {', '.join(sorted(course.exercises))}")
    broken = [f"{name}: {ex.error}" for name, ex in course.exercises.items() if ex.error]

    submissions = read_all(args.submissions, int(args.max_size * 1e6))
    if not submissions:
        print(f"No .ipynb files in {args.submissions}.", file=sys.stderr)
        return 1
    modules = {ex.module: name for name, ex in course.exercises.items()}
    known = {name: course.known_lines(name) for name in course.exercises}
    for sub in submissions:
        sub.exercise = args.notebook or (detect_exercise(sub, modules) if not sub.problem else None)
        sub.flags = scan_flags(sub.cells, known.get(sub.exercise, set()))
    feedback.mkdir(exist_ok=True)
    check_target(feedback, folder=True)
    grader = Grader(course, budget=budget, cell_timeout=args.timeout, notebook_timeout=args.notebook_timeout,
                    check_timeout=args.check_timeout, feedback=feedback)

    done = {r.get("submission"): r for r in previous}
    rows: list[dict] = []
    names = {s.name for s in submissions}
    rows += [r for r in previous if r.get("submission") not in names]  # rows of files no longer in the folder
    interrupted = False
    signal.signal(signal.SIGTERM, _stop)
    procs.hide_memory()  # the per-notebook keys stay in this process
    procs.become_subreaper()  # whatever a submission leaves running comes back here to be killed
    try:
        for sub in submissions:
            old = done.get(sub.name)
            if old and sub.sha256 and old.get("sha256") == sub.sha256:
                rows.append(old)
                continue
            exercise = course.exercises.get(sub.exercise) if sub.exercise else None
            if sub.problem or exercise is None:
                problem = sub.problem or "unknown exercise: it imports no known checks module (use --notebook)"
                row = unreadable_row(sub, exercise, problem)
                rows.append(row)
                grader.write_feedback(row, {}, [], None, exercise.question_names if exercise else [])
            else:
                row, messages, notes, run = grader.grade(sub, exercise)
                rows.append(row)
                grader.write_feedback(row, messages, notes, run, exercise.question_names)
            write_csv(rows, args.out, intruders_aside=True)
            print(f"graded {sub.name}: {row['score']}/{row['out_of']}, {row['status']}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        procs.kill_descendants()
    except OutputError as exc:
        procs.kill_descendants()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        write_csv(rows, args.out, intruders_aside=True)
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    restored = grader.restore_feedback()
    if restored:
        print(f"warning: {restored} feedback files were removed or changed while grading, and were written again",
              file=sys.stderr)
    print(summary(rows))
    if broken:
        print("warning: some checks could not be read (a course bug): " + "; ".join(broken), file=sys.stderr)
    if interrupted:
        print(f"interrupted: {args.out} holds the {len(rows)} rows graded so far; run again with --resume",
              file=sys.stderr)
        return 130
    print(f"wrote {args.out} and {feedback}/")
    return 0
