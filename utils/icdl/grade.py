"""Grade a folder of submitted exercise notebooks.

Usage::

    python -m icdl.grade SUBMISSIONS_DIR [--notebook 02_lenet] [--out grades.csv] [--timeout 600]

Each ``*.ipynb`` in the folder is run from top to bottom in a fresh kernel with
nbclient. A learner's broken cell does not stop the run (later cells and their
checks still count); ``--timeout`` limits each cell. The kernel starts in the
repository root, in the ``smoke`` budget unless ``COURSE_BUDGET`` is set, and
with ``COURSE_CHECK_LOG`` naming a temporary file: every check the notebook
calls appends its outcome there (see :mod:`icdl.checks.core`).

The questions expected are those registered in ``icdl.checks.ex<notebook>``.
The CSV has one row per submission: its status, one column per question
(``correct``, ``incorrect``, ``not attempted``, ``uncheckable``, or
``missing`` when that check never ran), the score (questions correct) and the
number of questions. When a question is checked several times, the last check
counts. A submission that cannot be read, or that times out, gets a row that
says so.

Grading runs other people's code: do it in a container or a throw-away account.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .checks.core import Question
from .env import repo_root

MISSING = "missing"


def expected_questions(notebook: str) -> list[str]:
    """Names of the questions registered for ``notebook`` (e.g. ``"02_lenet"`` -> ``["q1", ...]``)."""
    module = importlib.import_module(f"icdl.checks.ex{notebook}")
    names = [name for name, value in vars(module).items()
             if isinstance(value, Question) and value.notebook == notebook and value.name == name]
    if not names:
        raise ValueError(f"icdl.checks.ex{notebook} registers no questions")
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


@dataclass
class Run:
    """What happened when one notebook ran: ``status`` is "ok" or what went wrong."""

    status: str
    checks: list[dict] = field(default_factory=list)  # the check log's entries, in order
    seconds: float = 0.0


def kernel_env(log_path: Path) -> dict:
    """The environment of the grading kernel: the check log, smoke budget by default, never strict."""
    env = dict(os.environ)
    env.setdefault("COURSE_BUDGET", "smoke")
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    env.pop("COURSE_STRICT_CHECKS", None)  # a failed check must be recorded, not stop the run
    env["COURSE_CHECK_LOG"] = str(log_path)
    return env


def run_notebook(path: Path, *, timeout: int = 600, allow_errors: bool = True, cwd: Path | None = None,
                 extra_env: dict | None = None) -> Run:
    """Execute the notebook at ``path`` in a fresh kernel and collect its check log.

    With ``allow_errors=False`` the first failing cell stops the run and its
    status names that cell (used by the tests of the solution notebooks).
    """
    import time

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook, unreadable file
        return Run(f"unreadable: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    with tempfile.TemporaryDirectory(prefix="icdl-grade-") as tmp:
        log = Path(tmp) / "checks.jsonl"
        env = kernel_env(log)
        env.update(extra_env or {})
        client = NotebookClient(nb, timeout=timeout, allow_errors=allow_errors, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd or repo_root())}})
        start = time.perf_counter()
        try:
            client.execute(env=env)
            errors = [i for i, c in enumerate(nb.cells, 1) if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
            status = "ok" if not errors else f"ok, errors in cells {', '.join(map(str, errors))}"
        except CellTimeoutError:
            status = f"timed out (a cell ran over {timeout} s)"
        except DeadKernelError:
            status = "kernel died"
        except CellExecutionError as exc:
            status = f"error: {str(exc).strip().splitlines()[-1][:300]}"
        except Exception as exc:  # e.g. the kernel could not start
            status = f"could not run: {type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        checks = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    return Run(status, checks, seconds)


def outcomes(checks: list[dict], notebook: str, questions: list[str]) -> dict[str, str]:
    """Each question's outcome: the last check of it that ran, else ``missing``."""
    result = dict.fromkeys(questions, MISSING)
    for entry in checks:
        if entry.get("notebook") == notebook and entry.get("question") in result:
            result[entry["question"]] = entry["outcome"]
    return result


def guess_notebook(path: Path, checks: list[dict]) -> str | None:
    """The exercise a submission belongs to: from its checks, else from its file name."""
    logged = Counter(e.get("notebook") for e in checks if e.get("notebook"))
    if logged:
        return logged.most_common(1)[0][0]
    known = sorted((p.stem[2:] for p in (Path(__file__).parent / "checks").glob("ex*.py")), key=len, reverse=True)
    return next((name for name in known if name in path.stem), None)


def grade(folder: Path, notebook: str | None = None, timeout: int = 600) -> list[dict]:
    """One row (a dict) per ``*.ipynb`` in ``folder``: submission, notebook, status, questions, score."""
    rows = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        run = run_notebook(path, timeout=timeout)
        name = notebook or guess_notebook(path, run.checks)
        row = {"submission": path.name, "notebook": name or "?", "status": run.status,
               "seconds": round(run.seconds, 1)}
        try:
            questions = expected_questions(name) if name else []
        except (ImportError, ValueError):
            questions, row["status"] = [], f"{run.status}; no checks module icdl.checks.ex{name}"
        marks = outcomes(run.checks, name, questions)
        row.update(marks)
        row["score"] = sum(v == "correct" for v in marks.values())
        row["out_of"] = len(questions)
        rows.append(row)
    return rows


def write_csv(rows: list[dict], out: Path) -> None:
    fixed = ["submission", "notebook", "status"]
    tail = ["score", "out_of", "seconds"]
    questions = []
    for row in rows:
        questions += [k for k in row if k not in fixed + tail and k not in questions]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fixed + questions + tail, restval="")
        writer.writeheader()
        writer.writerows(rows)


def summary(rows: list[dict]) -> str:
    """A plain-text table: one line per submission, outcomes as one letter per question."""
    letter = {"correct": "C", "incorrect": "x", "not attempted": ".", "uncheckable": "!", MISSING: "-"}
    width = max([len("submission")] + [len(r["submission"]) for r in rows])
    lines = [f"{'submission':<{width}}  score  questions  status"]
    for r in rows:
        marks = "".join(letter.get(v, "?") for k, v in r.items() if re.fullmatch(r"q\d+\w*", k))
        lines.append(f"{r['submission']:<{width}}  {r['score']:>2}/{r['out_of']:<2}  {marks:<9}  {r['status']}")
    lines.append("C correct, x incorrect, . not attempted, ! uncheckable, - missing (check never ran)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icdl.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--notebook", help="the exercise, e.g. 02_lenet (default: recognised per submission)")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if args.notebook:
        try:
            expected_questions(args.notebook)
        except ImportError:
            parser.error(f"no checks module icdl.checks.ex{args.notebook}")
    rows = grade(args.submissions, args.notebook, args.timeout)
    if not rows:
        print(f"No .ipynb files in {args.submissions}.", file=sys.stderr)
        return 1
    write_csv(rows, args.out)
    print(summary(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
