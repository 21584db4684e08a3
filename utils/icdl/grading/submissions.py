"""Reading every submission before any runs.

Each ``*.ipynb`` of the folder is read once, into memory: a symbolic link, a
pipe or anything but a regular file is refused without being opened for
reading, and so is a file over the size limit or one that is not notebook JSON.
What runs later is this copy, so a submission that deletes or rewrites another
one's file changes nothing. Only the cells' types and sources are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

# Constructs a fair answer has no need for: listed in the CSV's ``flags`` column for the instructor to look at.
FLAG_PATTERNS = {
    "check log": r"COURSE_CHECK_LOG",
    "budget": r"COURSE_BUDGET",
    "patches checks": r"checks\.core|\bQuestion\b|\.evaluate\b|\bverify\b\s*=|_log\b",
    "module table": r"sys\.modules|importlib|__import__|meta_path|path_hooks",
    "builtins": r"\bbuiltins\b|__builtins__",
    "tracing": r"settrace|setprofile|addaudithook|_getframe|f_back|f_locals|currentframe|inspect\.stack|"
               r"gc\.get_(objects|referrers)",
    "processes": r"subprocess|os\.system|os\.popen|\bPopen\b|os\.fork|setsid|os\.kill|killpg|os\._exit|"
                 r"multiprocessing|^\s*!",
    "threads": r"\bthreading\b|\b_thread\b",
    "native code": r"\bctypes\b|\bcffi\b|prctl",
    "files outside": r"shutil\.(rmtree|move|copy)|os\.(remove|unlink|rename|replace|chmod|symlink)|\.unlink\(|"
                     r"open\([^)]*['\"]/",
}


@dataclass
class Submission:
    path: Path
    name: str  # the file name as found
    sha256: str = ""
    cells: list[dict] = field(default_factory=list)  # {"cell_type", "source"}
    problem: str | None = None  # why it cannot be graded
    exercise: str | None = None
    flags: list[str] = field(default_factory=list)


def _read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes, never following a symbolic link or blocking on a pipe."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ValueError("too large")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _cells(data: bytes) -> list[dict]:
    """Cell types and sources of a notebook (nbformat 4, or 3 converted), or ValueError saying why not."""
    import nbformat

    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not notebook JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise ValueError("JSON, but not a notebook (no cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:
        raise ValueError(f"not a valid notebook ({type(exc).__name__}: {str(exc)[:120]})") from None
    cells = []
    for cell in nb.cells:
        kind, source = cell.get("cell_type"), cell.get("source", "")
        if kind not in ("code", "markdown", "raw") or not isinstance(source, str):
            raise ValueError("a cell without a valid type or source")
        cells.append({"cell_type": kind, "source": source})
    return cells


def scan_flags(cells: list[dict], known_lines: set[str] = frozenset()) -> list[str]:
    """Labels of :data:`FLAG_PATTERNS` found in the code, leaving out lines the course's own notebook has."""
    code = "\n".join(line for c in cells if c["cell_type"] == "code" for line in c["source"].splitlines()
                     if line.strip() not in known_lines)
    return [label for label, pattern in FLAG_PATTERNS.items() if re.search(pattern, code, re.M)]


def detect_exercise(sub: Submission, known: dict[str, str]) -> str | None:
    """The exercise a submission answers, only ever one of ``known`` (module name -> exercise name).

    From the checks module it imports, else from its file name.
    """
    code = "\n".join(c["source"] for c in sub.cells if c["cell_type"] == "code")
    for module in re.findall(r"icdl\.checks(?:\.|\s+import\s+(?:\(\s*)?)(ex\d\d_\w+)", code):
        if module in known:
            return known[module]
    for exercise in sorted(known.values(), key=len, reverse=True):
        if exercise in sub.name:
            return exercise
    return None


def read_all(folder: Path, limit_bytes: int) -> list[Submission]:
    """Every ``*.ipynb`` entry of ``folder``, sorted by name, read (or refused) before anything runs."""
    found = []
    with os.scandir(folder) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(".ipynb"))
    for name in names:
        path = Path(folder) / name
        sub = Submission(path, name)
        try:
            info = os.lstat(path)
        except OSError as exc:
            sub.problem = f"unreadable: {type(exc).__name__}"
            found.append(sub)
            continue
        if stat.S_ISLNK(info.st_mode):
            sub.problem = "unreadable: a symbolic link, not a file"
        elif not stat.S_ISREG(info.st_mode):
            sub.problem = "unreadable: not a regular file (a folder, a pipe or a device)"
        elif info.st_size > limit_bytes:
            sub.problem = f"unreadable: {info.st_size / 1e6:.1f} MB, over the {limit_bytes / 1e6:g} MB limit"
        else:
            try:
                data = _read_bytes(path, limit_bytes)
                sub.sha256 = hashlib.sha256(data).hexdigest()
                sub.cells = _cells(data)
            except OSError as exc:
                sub.problem = f"unreadable: {type(exc).__name__}"
            except ValueError as exc:
                sub.problem = f"unreadable: {exc}"
        found.append(sub)
    return found
