"""The grader's two cells, and reading what the harness cell printed.

The notebook that runs is: the grader's set-up cell, the submission's cells, the
grader's harness cell (:mod:`icdl.grading.harness_main`). The harness prints one
line per event, ``ICDL-GRADE <seq> <base64 JSON> <HMAC-SHA256>``; the key is
made afresh for each submission and written only into the harness cell's
source. :func:`read_results` accepts only lines whose signature verifies, with
this submission's nonce, from the harness cell's own output; a second, different
line with the same sequence number voids the grade.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

OUTCOMES = ("correct", "incorrect", "not attempted", "uncheckable", "missing")
LINE = re.compile(r"^ICDL-GRADE (\d{1,6}) ([A-Za-z0-9+/=]{1,400000}) ([0-9a-f]{64})$")
HARNESS_SOURCE = (Path(__file__).parent / "harness_main.py").read_text(encoding="utf-8")


def new_secret() -> tuple[str, str]:
    """A fresh (key, nonce) pair, as hex strings."""
    return secrets.token_hex(32), secrets.token_hex(8)


def setup_cell(budget: str) -> str:
    """The first cell: the grader's budget, and ``os._exit`` made harmless (so the rest still runs)."""
    return f'''# Added by the grader (python -m icdl.grade): the grading budget; exits raise instead.
def _icdl_grader_setup():
    import os
    os.environ["COURSE_BUDGET"] = {budget!r}
    for name in ("COURSE_CHECK_LOG", "COURSE_STRICT_CHECKS"):
        os.environ.pop(name, None)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no other process reads this kernel's memory
    except Exception:
        pass
    kernel = os.getpid()

    def guard(real, what):
        def stop(*args):
            if os.getpid() != kernel:  # a forked child exits as usual
                real(*args)
            raise SystemExit(f"{{what}} is switched off while the notebook is graded")
        return stop

    try:  # the kernel's own output stream, for the harness, should the notebook replace sys.stdout
        import sys
        get_ipython()._icdl_grader_stdout = sys.stdout
    except Exception:
        pass
    os._exit = guard(os._exit, "os._exit()")
    os.abort = guard(os.abort, "os.abort()")
    try:  # IPython's exit() and quit() would shut the kernel down some time after the cell: a grade by timing
        def no_exit(*args, **kwargs):
            raise SystemExit("exit() is switched off while the notebook is graded")
        get_ipython().ask_exit = no_exit
    except Exception:
        pass


_icdl_grader_setup()
del _icdl_grader_setup
'''


def harness_cell(config: dict) -> str:
    """The last cell: the harness source and this submission's ``config`` (key included).

    It looks up no name the notebook could have bound: ``exec`` and ``compile``
    come from the interpreter's own builtins, reached from a class that exists
    before any notebook code runs, so a notebook that defines its own ``exec``,
    ``compile``, ``globals`` or ``__builtins__`` never sees the harness.
    """
    return ("# Added by the grader (python -m icdl.grade): checks the answers above.\n"
            "_icdl_b = [c for c in ().__class__.__base__.__subclasses__() if c.__module__ == '_frozen_importlib' "
            "and c.__name__ == 'BuiltinImporter'][0].find_spec.__func__.__globals__['__builtins__']\n"
            "_icdl_b = _icdl_b.__dict__ if _icdl_b.__class__.__name__ == 'module' else _icdl_b\n"
            "_icdl_g = {'__builtins__': _icdl_b, '__name__': 'icdl_grader'}\n"
            f"_icdl_b['exec'](_icdl_b['compile']({HARNESS_SOURCE!r}, 'icdl-grader', 'exec'), _icdl_g)\n"
            f"_icdl_g['grade']({config!r}, (lambda: 0).__globals__)\n"
            "del _icdl_b, _icdl_g\n")


@dataclass
class HarnessReport:
    """What the harness said, once verified."""

    results: dict[str, dict] = field(default_factory=dict)  # question -> its result entry
    started: bool = False
    done: bool = False
    void: str | None = None  # why the grade is void (tampering, a notebook thread reading along)
    fatal: str | None = None  # a course bug: the checks could not be imported
    flags: list[str] = field(default_factory=list)
    running: str | None = None  # the question being checked when the output stopped
    forged: int = 0  # lines that looked like the harness's but did not verify


def read_results(text: str, key: str, nonce: str, questions: list[str]) -> HarnessReport:
    report = HarnessReport()
    key_bytes = bytes.fromhex(key)
    seen: dict[int, str] = {}
    for line in text.splitlines():
        if "ICDL-GRADE" not in line:
            continue
        match = LINE.match(line.strip())
        if not match:
            report.forged += 1
            continue
        seq, body, mac = int(match.group(1)), match.group(2), match.group(3)
        want = hmac.new(key_bytes, f"{seq}:{body}".encode("ascii"), sha256).hexdigest()
        if not hmac.compare_digest(want, mac):
            report.forged += 1
            continue
        if seq in seen:
            if seen[seq] != body:
                report.void = "two different signed results for one check: the grader's output was tampered with"
            continue
        seen[seq] = body
        try:
            entry = json.loads(base64.b64decode(body, validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            report.forged += 1
            continue
        if not isinstance(entry, dict) or entry.get("nonce") != nonce or entry.get("seq") != seq:
            report.forged += 1
            continue
        kind = entry.get("kind")
        if kind == "start":
            report.started = True
            report.flags += [str(f)[:200] for f in entry.get("flags", []) if isinstance(f, str)][:10]
        elif kind == "begin":
            report.running = str(entry.get("question", ""))[:40]
        elif kind == "result":
            valid = _valid_result(entry, questions)
            if valid:
                report.results[valid["question"]] = valid
            report.running = None
        elif kind == "void":
            report.void = report.void or str(entry.get("reason", "void"))[:400]
        elif kind == "fatal":
            report.fatal = str(entry.get("reason", ""))[:400]
        elif kind == "done":
            report.done = entry.get("count") == len(questions)
    return report


def _valid_result(entry: dict, questions: list[str]) -> dict | None:
    """The result with checked types, or None when it names no expected question or an unknown outcome."""
    question, outcome = entry.get("question"), entry.get("outcome")
    if question not in questions or outcome not in OUTCOMES + ("pending",):
        return None
    count = entry.get("hints")
    solutions = entry.get("solutions")
    valid = {"question": question, "outcome": outcome, "message": str(entry.get("message", ""))[:4000],
             "hints": count if isinstance(count, int) and 0 <= count < 1000 else 0,
             "solutions": solutions if isinstance(solutions, int) and 0 <= solutions < 1000 else 0}
    digest = entry.get("sha256")
    if outcome == "pending":
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            return None
        valid["sha256"] = digest
    return valid
