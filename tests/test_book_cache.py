"""A smoke preview of the book never shows up in a later build of another budget (icdl.book).

Jupyter Book caches executed notebooks keyed on their code only; the course's
extension gives each budget its own cache and re-renders the pages when the
budget changes. A tiny book (one notebook that prints its budget) is built
smoke, quick, then smoke again.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.book

CONFIG = """\
title: cache test
only_build_toc_files: true
execute:
  execute_notebooks: cache
sphinx:
  extra_extensions: [icdl.book]
  config:
    nb_execution_raise_on_error: true
"""


def build(book: Path, budget: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_BUDGET", "CI")}
    if budget:
        env["COURSE_BUDGET"] = budget
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(book)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return (book / "_build" / "html" / "page.html").read_text(), proc.stdout + proc.stderr


def test_each_budget_has_its_own_cache(tmp_path):
    (tmp_path / "_config.yml").write_text(CONFIG)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Page"),
                nbformat.v4.new_code_cell("import os\nprint('budget is', os.environ.get('COURSE_BUDGET'))")]
    nbformat.write(nb, tmp_path / "page.ipynb")

    html, _ = build(tmp_path, "smoke")
    assert "budget is smoke" in html
    html, _ = build(tmp_path, "quick")
    assert "budget is quick" in html and "budget is smoke" not in html
    html, log = build(tmp_path, "smoke")  # back to smoke: from its own cache, not re-executed
    assert "budget is smoke" in html and "budget is quick" not in html
    assert "Executing notebook" not in log, log[-2000:]
    assert sorted(p.name for p in (tmp_path / "_build").glob(".jupyter_cache-*")) == \
        [".jupyter_cache-quick", ".jupyter_cache-smoke"]


def test_without_the_extension_the_cache_would_mix_budgets(tmp_path):
    """The control: plain Jupyter Book keeps the smoke output in a quick build (the bug the extension fixes)."""
    (tmp_path / "_config.yml").write_text(CONFIG.replace("  extra_extensions: [icdl.book]\n", ""))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Page"),
                nbformat.v4.new_code_cell("import os\nprint('budget is', os.environ.get('COURSE_BUDGET'))")]
    nbformat.write(nb, tmp_path / "page.ipynb")
    build(tmp_path, "smoke")
    html, _ = build(tmp_path, "quick")
    assert "budget is smoke" in html
