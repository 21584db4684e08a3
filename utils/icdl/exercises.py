"""Generate the student notebooks in ``exercises/`` from ``solutions/``.

``solutions/NN_topic.ipynb`` is the single source. Every answer in it sits
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers).
The generator writes ``exercises/NN_topic.ipynb`` with each block replaced:

* in a code cell, **indented** (inside a function or method body)::

      # YOUR CODE HERE
      raise NotImplementedError("Replace this line with your code.")

* in a code cell, **at top level**: ``# YOUR CODE HERE`` and ``name = None``
  for every name the block assigns, defines or imports (found with ``ast``),
  so later cells see ``None`` and the checks say "not attempted";
* in a markdown cell: the line ``*Your answer here.*``.

Outputs and execution counts are dropped, cell ids are kept (so regenerating
gives the same file), the Colab badge is pointed at the exercise notebook, and
the notebook metadata records that the file is generated.

Usage::

    python -m icdl.exercises generate              # every solutions/*.ipynb
    python -m icdl.exercises generate 02_lenet     # only some
    python -m icdl.exercises generate --check      # exit 1 if exercises/ is out of step
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

from .env import repo_root
from .notebooks import repo_url, sync_notebook

BEGIN = re.compile(r"###\s*BEGIN SOLUTION")
END = re.compile(r"###\s*END SOLUTION")
STUB_COMMENT = "# YOUR CODE HERE"
STUB_RAISE = 'raise NotImplementedError("Replace this line with your code.")'
MARKDOWN_STUB = "*Your answer here.*"
GENERATED_NOTE = ("Generated from {source} by `python -m icdl.exercises generate`. "
                  "Do not edit: change the solution notebook and regenerate.")
# Cell metadata that only describes one run of a notebook.
TRANSIENT_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


class SolutionBlockError(ValueError):
    """A solution block the generator cannot turn into a stub (message names notebook and cell)."""


# --------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------
def assigned_names(code: str) -> list[str]:
    """Names that top-level ``code`` binds in the module namespace, in order of appearance.

    ``x = 1; a, b = f(); def g(): ...; class C: ...; import torch.nn as nn; from m import k``
    -> ``["x", "a", "b", "g", "C", "nn", "k"]``. Names bound inside function or
    class bodies are local to those, so they are not listed.
    """
    names: list[str] = []

    def add(name: str) -> None:
        if name not in names:
            names.append(name)

    def targets(node) -> None:
        if isinstance(node, ast.Name):
            add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)
        elif isinstance(node, ast.Starred):
            targets(node.value)
        # attribute and subscript targets (obj.x = ..., d[k] = ...) bind no new name

    class Binder(ast.NodeVisitor):
        def visit_FunctionDef(self, node):  # the body is another scope
            add(node.name)

        visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

        def visit_Lambda(self, node):
            pass

        def visit_Assign(self, node):
            for t in node.targets:
                targets(t)
            self.generic_visit(node)

        def visit_AnnAssign(self, node):
            targets(node.target)
            self.generic_visit(node)

        def visit_AugAssign(self, node):
            targets(node.target)
            self.generic_visit(node)

        def visit_NamedExpr(self, node):
            targets(node.target)
            self.generic_visit(node)

        def visit_For(self, node):
            targets(node.target)
            self.generic_visit(node)

        visit_AsyncFor = visit_For

        def visit_withitem(self, node):
            if node.optional_vars is not None:
                targets(node.optional_vars)
            self.generic_visit(node)

        def visit_Import(self, node):
            for alias in node.names:
                add(alias.asname or alias.name.split(".")[0])

        def visit_ImportFrom(self, node):
            for alias in node.names:
                add(alias.asname or alias.name)

        # comprehensions have their own scope in Python 3
        def visit_ListComp(self, node):
            pass

        visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    Binder().visit(ast.parse(code))
    return names


def _blocks(lines: list[str], where: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of each solution block; errors on unmatched markers."""
    blocks, begin = [], None
    for i, line in enumerate(lines):
        if BEGIN.search(line):
            if begin is not None:
                raise SolutionBlockError(f"{where}: `### BEGIN SOLUTION` on line {i + 1} before the "
                                         f"`### END SOLUTION` of the block opened on line {begin + 1}.")
            begin = i
        elif END.search(line):
            if begin is None:
                raise SolutionBlockError(f"{where}: `### END SOLUTION` on line {i + 1} "
                                         f"without a `### BEGIN SOLUTION` before it.")
            blocks.append((begin, i))
            begin = None
    if begin is not None:
        raise SolutionBlockError(f"{where}: `### BEGIN SOLUTION` on line {begin + 1} "
                                 f"has no matching `### END SOLUTION`.")
    return blocks


def _code_stub(block: list[str], indent: str, where: str) -> list[str]:
    if indent:  # inside a function body: the learner's code must replace the raise
        return [indent + STUB_COMMENT, indent + STUB_RAISE]
    try:
        names = assigned_names("\n".join(block))
    except SyntaxError as exc:
        raise SolutionBlockError(f"{where}: the top-level solution block does not parse on its own "
                                 f"({exc.msg}, line {exc.lineno} of the block).") from None
    return [STUB_COMMENT] + [f"{name} = None" for name in names]


def strip_solutions(source: str, cell_type: str, where: str) -> str:
    """The cell ``source`` with every solution block replaced by its stub."""
    lines = source.splitlines()
    out, last = [], 0
    for begin, end in _blocks(lines, where):
        out += lines[last:begin]
        if cell_type == "code":
            indent = re.match(r"\s*", lines[begin]).group(0)
            out += _code_stub(lines[begin + 1:end], indent, where)
        else:
            out.append(MARKDOWN_STUB)
        last = end + 1
    out += lines[last:]
    return "\n".join(out)


# --------------------------------------------------------------------------
# One notebook
# --------------------------------------------------------------------------
def read_notebook(path: Path):
    """Read a notebook, giving cells without an id a stable one (derived from name and position).

    nbformat would invent random ids, and then every regeneration would differ.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    for i, cell in enumerate(raw.get("cells", [])):
        if not cell.get("id"):
            cell["id"] = hashlib.sha1(f"{Path(path).stem}:{i}".encode()).hexdigest()[:8]
    raw["nbformat"], raw["nbformat_minor"] = 4, max(raw.get("nbformat_minor", 5), 5)
    return nbformat.reads(json.dumps(raw), as_version=4)


def exercise_notebook(solution, name: str, url: str | None = None):
    """The student version of the ``solution`` notebook ``name`` (e.g. ``"02_lenet"``)."""
    nb = copy.deepcopy(solution)
    for number, cell in enumerate(nb.cells, start=1):
        where = f"solutions/{name}.ipynb, cell {number}"
        if cell.cell_type in ("code", "markdown"):
            cell.source = strip_solutions(cell.source, cell.cell_type, where)
        for key in TRANSIENT_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nb.metadata["icdl"] = {"generated_from": f"solutions/{name}.ipynb",
                           "note": GENERATED_NOTE.format(source=f"solutions/{name}.ipynb")}
    if url:  # the badge must open the exercise, not the solution
        sync_notebook(nb, url, f"exercises/{name}.ipynb")
    return nb


def _render(nb) -> str:
    """The file text, byte for byte as ``nbformat.write`` (and so nbstripout) would write it."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _names(root: Path, names) -> list[str]:
    if names:
        return [Path(n).stem for n in names]
    return sorted(p.stem for p in (root / "solutions").glob("*.ipynb"))


def _url(root: Path) -> str | None:
    return repo_url(root) if (root / "_config.yml").is_file() else None


def generate(root: Path | None = None, names=None) -> list[Path]:
    """Write ``exercises/<name>.ipynb`` for each solution; return the files that changed."""
    root = Path(root or repo_root())
    url, changed = _url(root), []
    for name in _names(root, names):
        source = root / "solutions" / f"{name}.ipynb"
        if not source.is_file():
            raise FileNotFoundError(f"no solution notebook {source.relative_to(root)}")
        text = _render(exercise_notebook(read_notebook(source), name, url))
        target = root / "exercises" / f"{name}.ipynb"
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    return changed


def out_of_step(root: Path | None = None, names=None) -> list[str]:
    """One line per exercise notebook that is missing, stale, or has no solution (orphan)."""
    root = Path(root or repo_root())
    url, problems = _url(root), []
    for name in _names(root, names):
        target = root / "exercises" / f"{name}.ipynb"
        want = exercise_notebook(read_notebook(root / "solutions" / f"{name}.ipynb"), name, url)
        if not target.is_file():
            problems.append(f"exercises/{name}.ipynb is missing")
        elif _render(read_notebook(target)) != _render(want):  # compare content, not formatting
            problems.append(f"exercises/{name}.ipynb is stale (solutions/{name}.ipynb changed)")
    if not names:
        for target in sorted((root / "exercises").glob("*.ipynb")):
            if not (root / "solutions" / target.name).is_file():
                problems.append(f"exercises/{target.name} is an orphan: there is no solutions/{target.name}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icdl.exercises", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate", help="write exercises/ from solutions/")
    gen.add_argument("names", nargs="*", help="notebooks, e.g. 02_lenet or solutions/02_lenet.ipynb (default: all)")
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of step")
    gen.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = (args.root or repo_root()).resolve()
    try:
        if args.check:
            problems = out_of_step(root, args.names)
            for line in problems:
                print(f"out of step: {line}")
            if problems:
                print("Run `python -m icdl.exercises generate` (and delete orphans) to fix.", file=sys.stderr)
                return 1
            print("exercises/ is in step with solutions/.")
            return 0
        for path in generate(root, args.names):
            print(f"wrote {path.relative_to(root)}")
    except (SolutionBlockError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
