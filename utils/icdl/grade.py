"""Grade a folder of submitted exercise notebooks: ``python -m icdl.grade`` (see :mod:`icdl.grading`).

Usage::

    python -m icdl.grade SUBMISSIONS_DIR [--notebook 02_lenet] [--out grades.csv] [--timeout 600] [--resume]

Run ``python -m icdl.grade --help`` for every option, and read instructors.md
for what grading protects against.

This module also keeps :func:`run_notebook`, which runs a notebook *as it is*,
in the checkout, and collects the checks the notebook itself calls (through
``COURSE_CHECK_LOG``). The tests and the benchmark use it on the course's own
notebooks. It trusts the notebook, so it never grades a submission.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


from .env import repo_root
from .grading.cli import main  # noqa: F401 - the command
from .grading.output import summary  # noqa: F401
from .grading.output import write_csv as _write_csv

MISSING = "missing"


def expected_questions(notebook: str) -> list[str]:
    """Names of the questions registered for ``notebook`` (e.g. ``"02_lenet"`` -> ``["q1", ...]``)."""
    module = importlib.import_module(f"icdl.checks.ex{notebook}")
    table = getattr(module, "QUESTIONS", None)
    names = list(table) if isinstance(table, dict) else []
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
    """The environment of :func:`run_notebook`'s kernel: the check log, smoke budget by default, never strict."""
    env = dict(os.environ)
    env.setdefault("COURSE_BUDGET", "smoke")
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    env.pop("COURSE_STRICT_CHECKS", None)  # a failed check must be recorded, not stop the run
    env["COURSE_CHECK_LOG"] = str(log_path)
    return env


def run_notebook(path: Path, *, timeout: int = 600, allow_errors: bool = True, cwd: Path | None = None,
                 extra_env: dict | None = None) -> Run:
    """Execute the notebook at ``path`` as it is, in a fresh kernel, and collect its check log (not for grading).

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
    """The exercise a notebook belongs to: from its checks, else from its file name; only ever a known exercise."""
    known = sorted((p.stem[2:] for p in (Path(__file__).parent / "checks").glob("ex[0-9][0-9]_*.py")),
                   key=len, reverse=True)
    logged = Counter(e.get("notebook") for e in checks if e.get("notebook") in known)
    if logged:
        return logged.most_common(1)[0][0]
    return next((name for name in known if name in path.stem), None)


def write_csv(rows: list[dict], out: Path) -> None:
    _write_csv(rows, out)


if __name__ == "__main__":
    sys.exit(main())
