"""The exercise generator (`python -m icdl.exercises`): stubs, errors, idempotence, --check."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from icdl import exercises
from icdl.env import repo_root
from icdl.notebooks import BADGE_IMG

ROOT = repo_root()

INDENTED = '''\
def conv_output_size(n, kernel_size, stride=1, padding=0):
    """Spatial size after a convolution."""
    ### BEGIN SOLUTION
    out = n + 2 * padding - kernel_size
    return out // stride + 1
    ### END SOLUTION

ex.q1.check(conv_output_size)'''

TOP_LEVEL = '''\
### BEGIN SOLUTION
import torch.nn as nn
from math import pi as PI
model, (a, *rest) = nn.Linear(2, 3), (1, 2, 3)
def helper(x):
    inner = x + 1  # local to helper: not stubbed
    return inner
class Net(nn.Module):
    pass
for i in range(2):
    total = i
### END SOLUTION
ex.q2.check(model)'''

MARKDOWN = """\
**Question.** Why does padding keep the size?

### BEGIN SOLUTION
Because it adds $k - 1$ pixels.
### END SOLUTION"""


def make_repo(tmp_path: Path, cells=None, name="09_demo") -> Path:
    """A tiny course checkout: _config.yml, _toc.yml, utils/ and one solution notebook."""
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "utils").mkdir()
    (tmp_path / "solutions").mkdir()
    write_solution(tmp_path, name, cells)
    return tmp_path


def write_solution(root: Path, name: str, cells=None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo exercises\n\nSome words."),
                nbformat.v4.new_code_cell("")]
    for kind, src in cells if cells is not None else [("code", INDENTED)]:
        maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(maker(src))
    path = root / "solutions" / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def generated(root: Path, name="09_demo"):
    return nbformat.read(root / "exercises" / f"{name}.ipynb", as_version=4)


def run_cli(root: Path, *args):
    return subprocess.run([sys.executable, "-m", "icdl.exercises", "generate", "--root", str(root), *args],
                          capture_output=True, text=True)


def test_indented_block_becomes_raise_at_its_indentation(tmp_path):
    root = make_repo(tmp_path)
    exercises.generate(root)
    src = generated(root).cells[2].source
    assert "out = n" not in src and "return out" not in src and "BEGIN SOLUTION" not in src
    assert ('    """Spatial size after a convolution."""\n'
            '    # YOUR CODE HERE\n'
            '    raise NotImplementedError("Replace this line with your code.")\n'
            '\nex.q1.check(conv_output_size)') in src
    # The stub still runs: defining the function works, calling it says "not implemented".
    namespace = {}
    exec(src.replace("ex.q1.check(conv_output_size)", ""), namespace)
    with pytest.raises(NotImplementedError):
        namespace["conv_output_size"](32, 5)


def test_top_level_block_sets_every_bound_name_to_none(tmp_path):
    root = make_repo(tmp_path, [("code", TOP_LEVEL)])
    exercises.generate(root)
    src = generated(root).cells[2].source
    assert src.splitlines() == ["# YOUR CODE HERE", "nn = None", "PI = None", "model = None", "a = None",
                                "rest = None", "helper = None", "Net = None", "i = None", "total = None",
                                "ex.q2.check(model)"]


def test_assigned_names_ignores_attributes_and_inner_scopes():
    code = "obj.x = 1\nd['k'] = 2\nys = [y for y in range(3)]\nf = lambda z: z\nwith open('f') as fh:\n    pass"
    assert exercises.assigned_names(code) == ["ys", "f", "fh"]


def test_markdown_block_becomes_your_answer_here(tmp_path):
    root = make_repo(tmp_path, [("markdown", MARKDOWN)])
    exercises.generate(root)
    src = generated(root).cells[2].source
    assert src == "**Question.** Why does padding keep the size?\n\n*Your answer here.*"


def test_outputs_dropped_ids_kept_badge_points_at_exercise_and_marked_generated(tmp_path):
    root = make_repo(tmp_path)
    path = root / "solutions" / "09_demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells[2].execution_count = 7
    nbformat.write(nb, path)
    exercises.generate(root)
    ex = generated(root)
    assert [c.id for c in ex.cells] == [c.id for c in nb.cells]
    assert ex.cells[2].outputs == [] and ex.cells[2].execution_count is None
    assert ex.metadata["icdl"]["generated_from"] == "solutions/09_demo.ipynb"
    badge = ex.cells[0].source.splitlines()[1]
    assert BADGE_IMG in badge and badge.endswith("/blob/main/exercises/09_demo.ipynb)")
    assert "REPO_URL" in ex.cells[1].source  # the set-up cell is filled in too


def test_generation_is_idempotent_even_without_cell_ids(tmp_path):
    root = make_repo(tmp_path, [("code", INDENTED), ("markdown", MARKDOWN)])
    # A notebook of format 4.4 has no cell ids: the generator must not invent random ones.
    path = root / "solutions" / "09_demo.ipynb"
    text = path.read_text().replace('"nbformat_minor": 5', '"nbformat_minor": 4')
    nb = nbformat.reads(text, as_version=4)
    for cell in nb["cells"]:
        cell.pop("id", None)
    path.write_text(nbformat.writes(nb, version=4).replace('"nbformat_minor": 5', '"nbformat_minor": 4'))
    assert exercises.generate(root) == [root / "exercises" / "09_demo.ipynb"]
    first = (root / "exercises" / "09_demo.ipynb").read_text()
    assert exercises.generate(root) == []  # nothing to rewrite
    (root / "exercises" / "09_demo.ipynb").unlink()
    exercises.generate(root)
    assert (root / "exercises" / "09_demo.ipynb").read_text() == first
    assert exercises.out_of_step(root) == []


@pytest.mark.parametrize("source, message", [
    ("x = 1\n### BEGIN SOLUTION\ny = 2", "cell 3: `### BEGIN SOLUTION` on line 2 has no matching `### END SOLUTION`"),
    ("y = 2\n### END SOLUTION", "cell 3: `### END SOLUTION` on line 2 without a `### BEGIN SOLUTION`"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "`### BEGIN SOLUTION` on line 2 before"),
    ("### BEGIN SOLUTION\nif x:\n### END SOLUTION", "cell 3: the top-level solution block does not parse"),
])
def test_bad_blocks_are_errors_naming_notebook_and_cell(tmp_path, source, message):
    root = make_repo(tmp_path, [("code", source)])
    with pytest.raises(exercises.SolutionBlockError, match="solutions/09_demo.ipynb") as err:
        exercises.generate(root)
    assert message in str(err.value)
    proc = run_cli(root)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (root / "exercises" / "09_demo.ipynb").exists()


def test_check_detects_missing_stale_and_orphan(tmp_path):
    root = make_repo(tmp_path)
    proc = run_cli(root, "--check")
    assert proc.returncode == 1 and "exercises/09_demo.ipynb is missing" in proc.stdout

    assert run_cli(root).returncode == 0
    proc = run_cli(root, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    write_solution(root, "09_demo", [("code", INDENTED.replace("stride + 1", "stride + 2"))])
    proc = run_cli(root, "--check")
    assert proc.returncode == 1 and "exercises/09_demo.ipynb is stale" in proc.stdout

    run_cli(root)
    (root / "exercises" / "08_old.ipynb").write_text((root / "exercises" / "09_demo.ipynb").read_text())
    proc = run_cli(root, "--check")
    assert proc.returncode == 1 and "exercises/08_old.ipynb is an orphan" in proc.stdout
    assert "09_demo" not in proc.stdout


def test_check_ignores_formatting_but_not_content(tmp_path):
    root = make_repo(tmp_path)
    exercises.generate(root)
    path = root / "exercises" / "09_demo.ipynb"
    nbformat.write(nbformat.read(path, as_version=4), path, indent=2)  # e.g. another tool's JSON layout
    assert exercises.out_of_step(root) == []
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace("raise NotImplementedError", "return 0  #")
    nbformat.write(nb, path)
    assert exercises.out_of_step(root) == ["exercises/09_demo.ipynb is stale (solutions/09_demo.ipynb changed)"]


def test_named_notebook_only(tmp_path):
    root = make_repo(tmp_path)
    write_solution(root, "10_other")
    assert run_cli(root, "solutions/10_other.ipynb").returncode == 0
    assert (root / "exercises" / "10_other.ipynb").is_file()
    assert not (root / "exercises" / "09_demo.ipynb").exists()


def test_repo_exercises_are_in_step_with_solutions():
    problems = exercises.out_of_step(ROOT)
    assert problems == [], "\n".join(problems) + "\nRun `python -m icdl.exercises generate`."
