"""The grade CSV and the feedback folder, written so that no submission can spoil them.

* Every write goes to a new temporary file in the same folder, then
  ``os.replace`` puts it in place: a reader sees the old file or the new one,
  and a symbolic link at the path is replaced, never followed.
* The CSV is rewritten after each notebook from the rows held in memory, so an
  interrupted run keeps what was graded, and ``--resume`` goes on from it.
* A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  gets a leading ``'``, so a spreadsheet shows it as text instead of running it
  as a formula.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import sys
import tempfile
import time
from pathlib import Path

FIXED = ["submission", "notebook", "status"]
TAIL = ["score", "out_of", "hints", "solutions", "flags", "seconds", "sha256"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class OutputError(Exception):
    """The CSV or the feedback folder cannot be written safely (a message for the instructor)."""


def neutralise(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def check_target(path: Path, *, folder: bool = False) -> None:
    """Refuse a symbolic link, or anything but a regular file (or folder), at ``path``."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if not Path(path).parent.is_dir():
            raise OutputError(f"{Path(path).parent} does not exist") from None
        return
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(f"{path} is a symbolic link: refusing to write through it; remove it or choose another path")
    if folder and not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path} exists and is not a folder")
    if not folder and not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe, socket or device)"
        raise OutputError(f"{path} is {kind}: refusing to write the grades there; choose another path")


def write_atomic(path: Path, text: str, *, intruders_aside: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    With ``intruders_aside``, a folder, pipe or link that appeared at ``path``
    after grading started (something a submission made) is renamed to
    ``<path>.intruder-<time>`` first, with a warning, instead of stopping the run.
    """
    path = Path(path)
    try:
        check_target(path)
    except OutputError:
        if not intruders_aside or not os.path.lexists(path):
            raise
        aside = path.with_name(f"{path.name}.intruder-{time.time_ns()}")
        os.rename(path, aside)
        print(f"warning: something appeared at {path} while grading; moved it to {aside}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"could not write {path}: {exc}") from None
        raise


def columns(rows: list[dict]) -> list[str]:
    questions: list[str] = []
    for row in rows:
        questions += [k for k in row if k not in FIXED + TAIL and k not in questions]
    questions.sort(key=lambda q: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", q)])
    return FIXED + questions + TAIL


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows), restval="", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise(v) for k, v in row.items()})
    return buffer.getvalue()


def write_csv(rows: list[dict], out: Path, *, intruders_aside: bool = False) -> None:
    write_atomic(out, csv_text(rows), intruders_aside=intruders_aside)


def read_csv(out: Path) -> list[dict]:
    """The rows of an earlier run (for ``--resume``); none when the file does not exist."""
    if not os.path.lexists(out):
        return []
    check_target(out)
    with open(out, newline="", encoding="utf-8") as f:
        return [dict(row) for row in csv.DictReader(f)]


def safe_name(name: str, taken: set[str]) -> str:
    """A file name of letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, unique in ``taken``."""
    stem = name[:-6] if name.endswith(".ipynb") else name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip("._-") or "submission"
    stem = stem[:100]
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}"
    taken.add(candidate)
    return candidate


def feedback_text(row: dict, questions: list[str], messages: dict[str, str], notes: list[str]) -> str:
    lines = [f"Submission: {row['submission']}", f"Exercise: {row['notebook']}", f"Status: {row['status']}",
             f"Score: {row['score']} of {row['out_of']}", ""]
    for q in questions:
        lines.append(f"{q}: {row.get(q, '')}")
        message = messages.get(q, "").strip()
        if message:
            lines += ["    " + line for line in message.splitlines()]
    if row.get("hints") not in (None, "", "none"):
        lines += ["", f"Hints shown while graded: {row['hints']}"]
    if row.get("solutions") not in (None, "", "none"):
        lines += [f"Solutions asked for while graded: {row['solutions']}"]
    lines += [""] + notes if notes else []
    return "\n".join(lines) + "\n"


LETTERS = {"correct": "C", "incorrect": "x", "not attempted": ".", "uncheckable": "!", "missing": "-", "void": "v"}


def summary(rows: list[dict]) -> str:
    """A plain-text table: one line per submission, outcomes as one letter per question."""
    width = max([len("submission")] + [len(str(r["submission"])) for r in rows])
    lines = [f"{'submission':<{width}}  score  questions  status"]
    for r in rows:
        marks = "".join(LETTERS.get(v, "?") for k, v in r.items() if re.fullmatch(r"q\d+\w*", k) and v != "")
        lines.append(f"{r['submission']:<{width}}  {r['score']:>2}/{r['out_of']:<2}  {marks:<9}  {r['status']}")
    lines.append("C correct, x incorrect, . not attempted, ! uncheckable, - missing, v void (results discarded)")
    return "\n".join(lines)
