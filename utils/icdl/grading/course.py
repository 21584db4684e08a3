"""The course code the grader trusts: read once, when grading starts.

:class:`Course` holds, in memory, every file of the ``icdl`` package (without
the grader itself) and, for each exercise, its questions: name, title, hints,
the variables that answer it, and whether it is scored from a saved
``state_dict``. Nothing is read from disk again while submissions run, so a
submission that edits the checkout cannot change how later ones are graded.

The question metadata comes from a separate Python process that imports the
checks from a private copy of that snapshot: the grader itself never imports a
checks module, let alone one named by a submission.

Two optional attributes of a question tell the grader more:

* ``answers``, a tuple of variable names: the notebook variables the grader
  passes to ``evaluate``. Without it they are read from the exercise
  notebook's ``qN.check(name, ...)`` call (plain names only).
* ``rebuild(state_dict) -> model``, for a trained-model question: the grader
  saves the answer's ``state_dict`` in the kernel and checks the rebuilt model
  in a separate process that runs no notebook code, in the grader's budget.

Each submission gets its own copy of the package (:meth:`Course.write_package`),
in which every ``checks/exNN_*.py`` is replaced by a stand-in: the questions'
titles and hints, a ``check()`` that says the grader checks the answers, no
reference values and no solutions. The real checks reach the kernel only inside
the grader's harness cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Files of the package that a notebook never needs: the grader itself.
GRADER_FILES = re.compile(r"^icdl/(grade\.py|grading/.*)$")
EXERCISE_FILE = re.compile(r"^icdl/checks/ex(\d\d_[a-z0-9_]+)\.py$")
CHECK_CALL = re.compile(r"\b(q\d+[a-z0-9_]*)\.check\(([^()]*)\)")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_PROBE = r"""
import json, sys
out = {}
for name, module in json.loads(sys.argv[1]).items():
    try:
        import importlib
        mod = importlib.import_module("icdl.checks." + module)
        table = getattr(mod, "QUESTIONS", None)
        if not isinstance(table, dict):
            raise TypeError("the module has no QUESTIONS table (end it with QUESTIONS = register(NOTEBOOK, ...))")
        qs = []
        for qname, q in table.items():
            hints = getattr(q, "hints", None) or []
            answers = getattr(q, "answers", None)
            qs.append({"name": str(qname), "title": str(getattr(q, "title", "")),
                       "hints": [str(h) for h in hints] if isinstance(hints, (list, tuple)) else [],
                       "answers": [str(a) for a in answers] if isinstance(answers, (list, tuple)) else None,
                       "rebuild": callable(getattr(q, "rebuild", None))})
        out[name] = {"questions": qs, "error": None}
    except Exception as exc:
        out[name] = {"questions": [], "error": f"{type(exc).__name__}: {exc}"[:500]}
sys.stdout.write(json.dumps(out))
"""


def natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class QuestionInfo:
    name: str
    title: str = ""
    hints: list[str] = field(default_factory=list)
    answers: list[str] | None = None  # the notebook variables passed to its check, in order
    rebuild: bool = False  # scored from the answer's state_dict in a clean process


@dataclass
class Exercise:
    name: str  # e.g. "02_lenet"
    module: str  # e.g. "ex02_lenet"
    questions: list[QuestionInfo] = field(default_factory=list)
    error: str | None = None  # why its questions could not be read

    @property
    def question_names(self) -> list[str]:
        return [q.name for q in self.questions]


class CourseError(Exception):
    """The course checkout cannot be graded against (a message for the instructor)."""


@dataclass
class Course:
    root: Path
    files: dict[str, bytes]  # "icdl/..." -> contents, without the grader's own files
    exercises: dict[str, Exercise]

    # -- reading --------------------------------------------------------------
    @classmethod
    def load(cls, root: Path) -> "Course":
        root = Path(root).resolve()
        package = root / "utils" / "icdl"
        if not (package / "__init__.py").is_file() or not (package / "checks" / "core.py").is_file():
            raise CourseError(f"{root} is not a course checkout (no utils/icdl/checks/core.py)")
        files = {}
        for path in sorted(package.rglob("*")):
            rel = path.relative_to(root / "utils").as_posix()
            if path.is_symlink() or not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if GRADER_FILES.match(rel):
                continue
            files[rel] = path.read_bytes()
        exercises = {}
        for rel in files:
            match = EXERCISE_FILE.match(rel)
            if match:
                exercises[match.group(1)] = Exercise(match.group(1), "ex" + match.group(1))
        course = cls(root, files, exercises)
        course._read_questions()
        return course

    def _read_questions(self) -> None:
        with tempfile.TemporaryDirectory(prefix="icdl-grade-probe-") as tmp:
            self.write_package(Path(tmp), stubs=False, read_only=False)
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "SYSTEMROOT")}
            env.update(PYTHONPATH=tmp, PYTHONDONTWRITEBYTECODE="1")
            names = {name: ex.module for name, ex in self.exercises.items()}
            proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(names)], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise CourseError(f"could not read the questions of the checks: {proc.stderr.strip()[-800:]}")
        found = json.loads(proc.stdout)
        for name, ex in self.exercises.items():
            info = found.get(name, {})
            ex.error = info.get("error")
            ex.questions = sorted((QuestionInfo(**q) for q in info.get("questions", [])),
                                  key=lambda q: natural_key(q.name))
            calls = self._check_calls(name)
            for q in ex.questions:
                if q.answers is None:
                    q.answers = calls.get(q.name)

    def _check_calls(self, name: str) -> dict[str, list[str]]:
        """``{"q1": ["conv_output_size"], ...}`` from the ``qN.check(...)`` calls of the exercise notebook."""
        calls: dict[str, list[str]] = {}
        for folder in ("exercises", "solutions"):
            path = self.root / folder / f"{name}.ipynb"
            if not path.is_file():
                continue
            try:
                cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            except (OSError, ValueError, KeyError):
                continue
            for cell in cells:
                if cell.get("cell_type") != "code":
                    continue
                src = cell.get("source", "")
                src = "".join(src) if isinstance(src, list) else str(src)
                for match in CHECK_CALL.finditer(src):
                    args = [a.strip() for a in match.group(2).split(",") if a.strip()]
                    if args and all(IDENTIFIER.match(a) for a in args):
                        calls.setdefault(match.group(1), args)
        return calls

    def known_lines(self, exercise: str) -> set[str]:
        """Every line of the exercise's own notebooks (exercises/ and solutions/), stripped."""
        lines: set[str] = set()
        for folder in ("exercises", "solutions"):
            try:
                cells = json.loads((self.root / folder / f"{exercise}.ipynb").read_text(encoding="utf-8"))["cells"]
            except (OSError, ValueError, KeyError):
                continue
            for cell in cells:
                src = cell.get("source", "")
                text = "".join(src) if isinstance(src, list) else str(src)
                lines.update(line.strip() for line in text.splitlines())
        return lines

    # -- what a submission's kernel gets ---------------------------------------
    def exercise_for_module(self, module: str) -> str | None:
        return next((name for name, ex in self.exercises.items() if ex.module == module), None)

    def checks_sources(self, exercise: str) -> dict[str, str]:
        """The real checks for ``exercise``: its module and every non-exercise module of ``icdl/checks``."""
        own = f"icdl/checks/ex{exercise}.py"
        return {rel: data.decode("utf-8") for rel, data in self.files.items()
                if rel.startswith("icdl/checks/") and rel.endswith(".py")
                and (rel == own or not EXERCISE_FILE.match(rel))}

    def manifest(self) -> dict[str, str]:
        """sha256 of every file outside ``icdl/checks``: the harness refuses a changed one."""
        return {rel: sha256(data) for rel, data in self.files.items() if not rel.startswith("icdl/checks/")}

    def write_package(self, dest: Path, *, stubs: bool = True, read_only: bool = True) -> Path:
        """Write the package under ``dest`` (``dest/icdl/...``); with ``stubs`` the exercise checks are stand-ins."""
        dest = Path(dest)
        for rel, data in self.files.items():
            if stubs and EXERCISE_FILE.match(rel):
                data = self._stub(EXERCISE_FILE.match(rel).group(1)).encode("utf-8")
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if stubs:
            (dest / "icdl" / "checks" / "_graded.py").write_text(STUB_QUESTION, encoding="utf-8")
        if read_only:
            make_read_only(dest / "icdl")
        return dest

    def _stub(self, exercise: str) -> str:
        ex = self.exercises[exercise]
        lines = [f'"""Stand-in for the checks of exercise {exercise} while it is graded."""',
                 "from ._graded import GradedQuestion, no_attribute", "",
                 f"NOTEBOOK = {exercise!r}"]
        for q in ex.questions:
            lines.append(f"{q.name} = GradedQuestion({exercise!r}, {q.name!r}, {q.title!r}, {q.hints!r})")
        lines.append("QUESTIONS = {" + ", ".join(f"{q.name!r}: {q.name}" for q in ex.questions) + "}")
        lines.append("__getattr__ = no_attribute(NOTEBOOK)")
        return "\n".join(lines) + "\n"


def make_read_only(folder: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def make_writable(folder: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        try:
            os.chmod(dirpath, 0o755)
        except OSError:
            pass
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                if not os.path.islink(path):
                    os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
            except OSError:
                pass


STUB_QUESTION = '''"""Questions while a notebook is graded: the grader checks the answers, not these."""


class NotChecked:
    """What ``evaluate()`` returns while graded: false, like a check that did not pass."""

    outcome = "not checked"
    message = "The grader checks this answer once the notebook has run."
    question = ""

    def __bool__(self):
        return False

    def __repr__(self):
        return "NotChecked()"


class GradedQuestion:
    """``check()`` records nothing, ``evaluate()`` is false, ``hint()`` works and is counted, no ``solution()``."""

    def __init__(self, notebook, name, title, hints):
        self.notebook, self.name, self.title, self.hints = notebook, name, title, list(hints)
        self._hints_shown = set()
        self._solutions_asked = 0

    def check(self, *answers, **kwargs):
        print(f"{self.name.upper()}: {self.title}\\nThe grader checks this answer once the notebook has run.")

    def evaluate(self, *answers, **kwargs):
        return NotChecked()

    def hint(self, n=None):
        if not self.hints:
            print("No hints for this question.")
            return
        try:
            n = int(str(n).strip()) if n is not None else len(self._hints_shown) + 1
        except ValueError:
            n = len(self._hints_shown) + 1
        n = max(1, min(n, len(self.hints)))
        self._hints_shown.add(n)
        print(f"Hint {n} of {len(self.hints)}: {self.hints[n - 1]}")

    def solution(self):
        self._solutions_asked += 1
        print("The solution is not available while the notebook is graded.")

    def __repr__(self):
        return f"<{self.notebook} {self.name}: {self.title}>"


def no_attribute(notebook):
    def __getattr__(name):
        raise AttributeError(f"icdl.checks for {notebook} offers only its questions while it is graded, not {name!r}")
    return __getattr__
'''
