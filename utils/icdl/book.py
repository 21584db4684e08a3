"""A Sphinx extension for the course book (enabled in ``_config.yml``, ``sphinx: extra_extensions``).

It does two things:

* **Each budget gets its own notebook cache.** ``jupyter-book build`` caches
  executed notebooks keyed on their code only. Without this a fast preview
  (``COURSE_BUDGET=smoke jupyter-book build .``) would leave its smoke outputs in
  the cache, and every later build would show them as if they were the quick or
  full budget's results. Here the budget (``COURSE_BUDGET``, else the one the
  notebooks choose on this machine) names the cache folder
  (``_build/.jupyter_cache-quick``), and it is a Sphinx setting that invalidates
  the pages, so a change of budget re-renders every page from that budget's cache.
* **A cell that runs past the cell time limit is named.** The build then stops
  with a long traceback that ends in a bare notebook path. This extension adds a
  message that says which notebook and which cell ran too long, in which budget,
  and how to build the book quickly in the smoke budget instead; it is printed
  where the failure happens and again at the very end of the output.
* **Every page loads without errors in the browser.** Two defects of the theme stack
  are repaired on each page (:func:`tidy_page_context`): sphinx-thebe adds its inline
  ``const THEBE_JS_URL = ...`` script twice, and the second copy throws a
  ``SyntaxError``; and pydata-sphinx-theme reads the colour mode from a template
  variable that nothing sets, so the page starts with "invalid theme mode".
* **Long outputs scroll.** ``static/icdl-book.css`` caps the height of a printed
  output; a longer one scrolls inside its cell.
* **Figures are drawn.** A notebook kernel started with ``MPLBACKEND`` set to a
  non-interactive backend such as ``Agg`` (test set-ups and servers often set it) shows
  a figure as the text ``<Figure size 640x480 with 1 Axes>``, and the book would have
  no images. The build removes that setting for its kernels.
"""

from __future__ import annotations

import ast
import atexit
import os
import re
import sys
from pathlib import Path

SMOKE_COMMAND = "COURSE_BUDGET=smoke jupyter-book build ."
_PREVIEW = re.compile(r"Here is a preview of the cell contents:\n-+\n(.*)\n-+\s*$", re.S)
_SECONDS = re.compile(r"after (\d+) seconds")


def _key_cache_on_budget(app, config) -> None:
    if not config.nb_execution_cache_path:  # myst-nb's default is <outdir>/../.jupyter_cache
        config.nb_execution_cache_path = str(Path(app.outdir).parent / f".jupyter_cache-{config.course_budget}")


def find_timed_out_cell(cells, error_text: str) -> int | None:
    """Index (in ``cells``) of the code cell whose preview the timeout message shows; None if unknown.

    nbclient's message quotes the whole cell when it is under 11 lines, else the
    list of its first five lines, ``...``, and the list of its last five.
    """
    match = _PREVIEW.search(error_text)
    if not match:
        return None
    preview = match.group(1)
    head = None
    if preview.startswith("[") and "\n...\n" in preview:
        try:
            head = ast.literal_eval(preview.split("\n...\n", 1)[0])
        except (ValueError, SyntaxError):
            head = None
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if head is not None and source.strip().split("\n")[:5] == head:
            return index
        if head is None and source.strip() == preview.strip():
            return index
    return None


def timeout_message(notebook: str, cells, error_text: str, budget: str, timeout: int | None = None) -> str:
    """What to tell the person building the book when a cell of ``notebook`` ran past the time limit."""
    match = _SECONDS.search(error_text)
    seconds = int(match.group(1)) if match else timeout
    index = find_timed_out_cell(cells, error_text)
    if index is None:
        where = "one of its cells"
    else:
        code_number = sum(1 for c in cells[: index + 1] if c.get("cell_type") == "code")
        source = cells[index].get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        first = first if len(first) <= 60 else first[:57] + "..."
        where = f'cell {index + 1} of {len(cells)} (code cell {code_number}, which starts "{first}")'
    limit = f"the limit of {seconds} s per cell" if seconds else "the time limit per cell"
    return (
        f"The book build stopped: in {notebook}, {where} ran longer than {limit} "
        f"(`execute: timeout:` in _config.yml), in the `{budget}` budget.\n"
        f"  * To preview the whole book in seconds per notebook, build it in the smoke budget:\n"
        f"        {SMOKE_COMMAND}\n"
        f"    (its pages then show the outputs of tiny runs, and it keeps its own cache).\n"
        f"  * To build the `{budget}` budget, run the build on a less busy or faster machine, "
        f"or raise `timeout:` under `execute:` in _config.yml.\n"
        f"Notebooks that finished before this one are cached and are not run again."
    )


def _explain_timeout(app, exception) -> None:
    """On ``build-finished`` with an error: name the notebook and cell that ran out of time."""
    if exception is None:
        return
    cause = exception.__cause__
    if type(cause).__name__ != "CellTimeoutError" or not exception.args:
        return
    import nbformat
    from sphinx.util import logging

    path = Path(str(exception.args[0]))
    try:
        notebook = path.resolve().relative_to(Path(app.srcdir).resolve()).as_posix()
    except ValueError:
        notebook = str(path)
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # the message still names the notebook
        cells = []
    message = timeout_message(notebook, cells, str(cause), app.config.course_budget,
                              getattr(app.config, "nb_execution_timeout", None))
    logging.getLogger(__name__).error(message)
    # jupyter-book prints a long traceback after this; say it once more where the reader looks.
    atexit.register(lambda: print(f"\n{message}", file=sys.stderr))


def _script_key(script) -> tuple:
    if not hasattr(script, "filename"):  # a plain string: its file name
        return (str(script), ())
    attributes = script.attributes or {}
    # An inline script comes with the file name None or "" (sphinx-thebe's two copies differ just so).
    return (script.filename or "", tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def tidy_page_context(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: each script once (first occurrence kept), and a colour mode the theme accepts.

    An inline script has no file name; it is identified by its body (an attribute), so two
    different inline scripts both stay.
    """
    scripts = context.get("script_files")
    if scripts:
        seen, kept = set(), []
        for script in scripts:
            key = _script_key(script)
            if key not in seen:
                seen.add(key)
                kept.append(script)
        context["script_files"] = kept
    if not context.get("default_mode"):
        context["default_mode"] = "auto"  # pydata-sphinx-theme's own default: follow the reader's system


def _figures_inline(app, config) -> None:
    backend = os.environ.get("MPLBACKEND", "")
    if backend and "inline" not in backend.lower():
        del os.environ["MPLBACKEND"]  # the kernels the build starts inherit this process's environment
        from sphinx.util import logging

        logging.getLogger(__name__).info(f"icdl.book: MPLBACKEND={backend} ignored, so that notebooks draw "
                                         "their figures on the page")


STATIC = Path(__file__).parent / "static"


def _add_static(app, config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app):
    from .env import get_budget

    budget = get_budget()
    app.add_config_value("course_budget", budget, "env")  # a new value re-reads every page
    app.connect("config-inited", _key_cache_on_budget)
    app.connect("config-inited", _figures_inline)
    app.connect("config-inited", _add_static)
    app.add_css_file("icdl-book.css")
    app.connect("build-finished", _explain_timeout)
    app.connect("html-page-context", tidy_page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
