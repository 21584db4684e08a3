"""`python -m icdl.notebooks sync`: Colab badges and set-up cells follow _config.yml and the package version."""

import re
import subprocess
import sys

import icdl
import nbformat
import pytest
import yaml
from icdl.env import repo_root
from icdl.notebooks import (BADGE_IMG, SETUP_TAG, badge_line, colab_url, course_version, notebook_paths,
                            repo_url, setup_cell_source)

ROOT = repo_root()
NOTEBOOKS = notebook_paths(ROOT)


def sync(cwd, *args):
    return subprocess.run([sys.executable, "-m", "icdl.notebooks", "sync", *args], cwd=cwd,
                          capture_output=True, text=True)


def tiny_course(tmp_path, version="0.1.0"):
    """A checkout with the course's _config.yml, a package version and no notebooks yet."""
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "utils" / "icdl").mkdir(parents=True)
    (tmp_path / "utils" / "icdl" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (tmp_path / "chapters").mkdir()
    return tmp_path


def test_repo_notebooks_are_in_sync():
    proc = sync(ROOT, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sync_fixes_a_wrong_badge_and_a_missing_setup_cell(tmp_path):
    tiny_course(tmp_path)
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
    assert f"out of step: chapters/09_demo.ipynb: Colab badge, set-up cell, set-up cell tag `{SETUP_TAG}`" \
        in proc.stdout
    assert nbformat.read(path, as_version=4) == nb  # --check writes nothing

    assert sync(tmp_path).returncode == 0
    fixed = nbformat.read(path, as_version=4)
    url = repo_url(tmp_path)
    assert fixed.cells[0].source == f"# Demo\n{badge_line(url, 'chapters/09_demo.ipynb')}\n\nText."
    assert [c.source for c in fixed.cells[1:]] == [setup_cell_source(url, "0.1.0"),
                                                   "from icdl import env\ncfg = env.setup()"]
    assert fixed.cells[1].metadata.tags == [SETUP_TAG]
    assert "tags" not in fixed.cells[2].metadata  # the notebook's own first cell is left alone
    proc = sync(tmp_path, "--check")
    assert proc.returncode == 0, proc.stdout


def synced_copy(tmp_path, name="chapters/02_lenet.ipynb"):
    """A course notebook, brought in step, in a tiny checkout of the same version."""
    tiny_course(tmp_path, course_version(ROOT))
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text((ROOT / name).read_text())
    assert sync(tmp_path).returncode == 0 and sync(tmp_path, "--check").returncode == 0
    return tmp_path / name


def test_every_setup_cell_is_tagged_to_hide_its_code_in_the_book():
    for path in NOTEBOOKS:
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert "REPO_URL" in first.source, f"{path.name}: the first code cell is not the set-up cell"
        assert SETUP_TAG in first.metadata.get("tags", []), f"{path.relative_to(ROOT)}: set-up cell lacks `{SETUP_TAG}`"


def test_check_reports_a_setup_cell_without_its_tag(tmp_path):
    """The control: the same notebook with the tag removed is reported, and sync puts the tag back."""
    path = synced_copy(tmp_path)
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    setup.metadata["tags"] = [t for t in setup.metadata.get("tags", []) if t != SETUP_TAG]
    nbformat.write(nb, path)
    proc = sync(tmp_path, "--check")
    assert proc.returncode == 1
    assert f"chapters/02_lenet.ipynb: set-up cell tag `{SETUP_TAG}`" in proc.stdout
    assert sync(tmp_path).returncode == 0 and sync(tmp_path, "--check").returncode == 0
    setup = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert SETUP_TAG in setup.metadata.tags


def test_setup_cell_names_the_package_version_and_a_new_version_needs_a_sync(tmp_path):
    assert course_version(ROOT) == icdl.__version__
    assert f'COURSE_VERSION = "{icdl.__version__}"' in setup_cell_source(repo_url(ROOT))
    path = synced_copy(tmp_path)
    init = tmp_path / "utils" / "icdl" / "__init__.py"
    init.write_text('__version__ = "9.9.9"\n')
    proc = sync(tmp_path, "--check")
    assert proc.returncode == 1 and "chapters/02_lenet.ipynb: set-up cell" in proc.stdout
    assert sync(tmp_path).returncode == 0
    assert 'COURSE_VERSION = "9.9.9"' in nbformat.read(path, as_version=4).cells[1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_colab_badge_opens_this_notebook_on_main(path):
    rel = path.relative_to(ROOT).as_posix()
    title = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    links = re.findall(rf"\[!\[Open In Colab\]\({re.escape(BADGE_IMG)}\)\]\(([^)]+)\)", title.source)
    assert links == [f"https://colab.research.google.com/github/{repo_url(ROOT).split('github.com/')[1]}"
                     f"/blob/main/{rel}"], f"{rel}: its Colab badge must open {rel} on main"


def test_config_enables_the_colab_launch_button_for_main():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    repository = config["repository"]
    assert repository["url"] == repo_url(ROOT) and repository["url"].startswith("https://github.com/")
    assert repository["branch"] == "main"  # Jupyter Book 1.x would otherwise link to master
    assert repository.get("path_to_book", "") == ""  # notebooks' paths in the book are their paths in the repository
    assert colab_url(repo_url(ROOT), "chapters/02_lenet.ipynb").endswith("/blob/main/chapters/02_lenet.ipynb")
