"""Book pages as a reader gets them, built from the course's own _config.yml in a tiny book.

* The set-up cell's code is not on the page, its report (versions, device) is.
* Every notebook page has a Colab launch button and badge opening that notebook on main.
* A cell that runs past the cell time limit stops the build with a message that
  names the notebook and the cell and gives the smoke-budget command (icdl.book).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from icdl.book import SMOKE_COMMAND, find_timed_out_cell, tidy_page_context, timeout_message
from icdl.env import repo_root
from icdl.notebooks import colab_url, repo_url, sync_notebook

pytestmark = pytest.mark.book
ROOT = repo_root()


def tiny_book(tmp_path: Path, cells: list, timeout: int | None = None, setup_cell: bool = True) -> Path:
    """The course's _config.yml (optionally with another cell time limit) and one notebook, synced."""
    config = (ROOT / "_config.yml").read_text()
    if timeout is not None:
        config, n = re.subn(r"^(\s+timeout:)\s*\d+", rf"\1 {timeout}", config, flags=re.M)
        assert n == 1
    (tmp_path / "_config.yml").write_text(config)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: chapters/01_demo\n")
    (tmp_path / "utils").symlink_to(ROOT / "utils", target_is_directory=True)
    (tmp_path / "chapters").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.language_info = {"name": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo\n\nA page.")] + cells
    if setup_cell:
        sync_notebook(nb, repo_url(ROOT), "chapters/01_demo.ipynb")
    nbformat.write(nb, tmp_path / "chapters" / "01_demo.ipynb")
    return tmp_path


def build(book: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_BUDGET": "smoke", "TQDM_DISABLE": "1"}
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jb), "build", str(book), *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_page_hides_the_setup_code_shows_its_report_and_links_to_colab(tmp_path):
    figure = ("import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots(figsize=(2, 2))\nax.plot([0, 1])\n"
              "plt.close(fig)\nfig")
    book = tiny_book(tmp_path, [nbformat.v4.new_code_cell("print('the lesson starts here')"),
                                nbformat.v4.new_code_cell(figure)])
    # The control: the same notebook whose set-up cell lost its tag shows the set-up code.
    control = nbformat.read(book / "chapters" / "01_demo.ipynb", as_version=4)
    control.cells[1].metadata.pop("tags")
    control.metadata["mystnb"] = {"execution_mode": "off"}  # its code is what counts; no need to run it
    nbformat.write(control, book / "chapters" / "02_untagged.ipynb")
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/01_demo\nchapters:\n- file: chapters/02_untagged\n")
    proc = build(book, "-W", "-n", "--keep-going")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "REPO_URL" in (book / "_build" / "html" / "chapters" / "02_untagged.html").read_text(encoding="utf-8")
    html = (book / "_build" / "html" / "chapters" / "01_demo.html").read_text(encoding="utf-8")
    assert "REPO_URL" not in html and "setup_report" not in html  # the set-up code is not on the page
    assert re.search(r"Python \d+\.\d+\.\d+ \| torch \S+ \| torchvision \S+ \| icdl \S+ \| device: cpu", html)
    assert "the lesson starts here" in html and "print(" in html  # other cells keep their code
    # A figure is an image on the page even when the build runs with MPLBACKEND=Agg (conftest.py sets it).
    assert os.environ.get("MPLBACKEND") == "Agg"
    assert re.search(r'<img [^>]*src="\.\./_images/[^"]+\.png"', html), "the figure is not on the page"
    assert "&lt;Figure size" not in html
    colab = colab_url(repo_url(ROOT), "chapters/01_demo.ipynb")
    assert re.search(rf'<a href="{re.escape(colab)}"[^>]*title="Launch on Colab"', html), "no launch button"
    assert re.search(rf'<a [^>]*href="{re.escape(colab)}"><img alt="Open In Colab"', html), "no badge"
    # Scripts that would throw in the browser: a constant declared twice, and an empty colour mode.
    assert html.count("const THEBE_JS_URL") == 1, "sphinx-thebe's inline script is on the page more than once"
    assert 'localStorage.getItem("mode") || "auto"' in html, "the page starts with an empty colour mode"


def test_page_context_keeps_each_script_once_and_sets_a_colour_mode():
    from sphinx.builders.html import _JavaScript

    thebe = _JavaScript(None, priority=500, body='const THEBE_JS_URL = "x"')
    other = _JavaScript(None, priority=500, body="const OTHER = 1")
    context = {"script_files": [_JavaScript("a.js", priority=500), thebe, other, _JavaScript("a.js", priority=500),
                                _JavaScript("", priority=500, body='const THEBE_JS_URL = "x"'),
                                _JavaScript("a.js", priority=500, **{"async": "async"})]}
    tidy_page_context(None, "page", "page.html", context, None)
    assert [(s.filename, s.attributes.get("body"), s.attributes.get("async")) for s in context["script_files"]] == [
        ("a.js", None, None), (None, 'const THEBE_JS_URL = "x"', None), (None, "const OTHER = 1", None),
        ("a.js", None, "async")]
    assert context["default_mode"] == "auto"
    chosen = {"script_files": [], "default_mode": "dark"}
    tidy_page_context(None, "page", "page.html", chosen, None)
    assert chosen["default_mode"] == "dark"  # a mode the book chose is kept


def test_a_cell_past_the_time_limit_is_named_with_the_smoke_command(tmp_path):
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("Now a long step."),
             nbformat.v4.new_code_cell("import time\n\ntime.sleep(60)  # far past the limit")]
    book = tiny_book(tmp_path, cells, timeout=3, setup_cell=False)  # torch's import could take 3 s here
    proc = build(book)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # title, x = 1, markdown, then the slow cell: the fourth of four cells, the second code cell
    expected = ("The book build stopped: in chapters/01_demo.ipynb, cell 4 of 4 (code cell 2, which starts "
                '"import time") ran longer than the limit of 3 s per cell')
    assert expected in log, log[-4000:]
    assert "in the `smoke` budget" in log
    end = log[log.rindex("There was an error in building your book"):]  # repeated after the traceback
    assert expected in end and SMOKE_COMMAND in end


def test_timeout_message_finds_a_long_cell_from_its_preview():
    """nbclient quotes a cell of 11 lines or more as two lists of lines; the message still finds it."""
    long_source = "\n".join(f"step_{i} = {i}" for i in range(14))
    cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("a = 1"),
             nbformat.v4.new_code_cell(long_source)]
    lines = long_source.split("\n")
    error = ("A cell timed out while it was being executed, after 1200 seconds.\n"
             "The message was: Cell execution timed out.\nHere is a preview of the cell contents:\n"
             f"-------------------\n{lines[:5]}\n...\n{lines[-5:]}\n-------------------\n")
    assert find_timed_out_cell(cells, error) == 2
    message = timeout_message("chapters/06_resnet.ipynb", cells, error, "quick")
    assert 'in chapters/06_resnet.ipynb, cell 3 of 3 (code cell 2, which starts "step_0 = 0")' in message
    assert "the limit of 1200 s per cell" in message and "in the `quick` budget" in message
    assert SMOKE_COMMAND in message
    # An unrecognised preview still names the notebook and the command.
    vague = timeout_message("chapters/06_resnet.ipynb", cells, "timed out", "quick", timeout=600)
    assert "in chapters/06_resnet.ipynb, one of its cells ran longer than the limit of 600 s" in vague
    assert SMOKE_COMMAND in vague
