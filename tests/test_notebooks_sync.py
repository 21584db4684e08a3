"""`python -m icdl.notebooks sync`: Colab badges and set-up cells follow _config.yml."""

import subprocess
import sys

import nbformat
from icdl.env import repo_root
from icdl.notebooks import BADGE_IMG, badge_line, repo_url, setup_cell_source

ROOT = repo_root()


def sync(cwd, *args):
    return subprocess.run([sys.executable, "-m", "icdl.notebooks", "sync", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_repo_notebooks_are_in_sync():
    proc = sync(ROOT, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sync_fixes_a_wrong_badge_and_a_missing_setup_cell(tmp_path):
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "utils").mkdir()
    (tmp_path / "chapters").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Demo\n[![Open In Colab]({BADGE_IMG})](https://colab.research.google.com/"
                                      "github/someone/else/blob/main/chapters/09_demo.ipynb)\n\nText."),
        nbformat.v4.new_code_cell("from icdl import env\ncfg = env.setup()"),
    ]
    path = tmp_path / "chapters" / "09_demo.ipynb"
    nbformat.write(nb, path)

    proc = sync(tmp_path, "--check")
    assert proc.returncode == 1
    assert "out of step: chapters/09_demo.ipynb: Colab badge, set-up cell" in proc.stdout
    assert nbformat.read(path, as_version=4) == nb  # --check writes nothing

    assert sync(tmp_path).returncode == 0
    fixed = nbformat.read(path, as_version=4)
    url = repo_url(tmp_path)
    assert fixed.cells[0].source == f"# Demo\n{badge_line(url, 'chapters/09_demo.ipynb')}\n\nText."
    assert [c.source for c in fixed.cells[1:]] == [setup_cell_source(url), "from icdl import env\ncfg = env.setup()"]
    proc = sync(tmp_path, "--check")
    assert proc.returncode == 0, proc.stdout
