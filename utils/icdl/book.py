"""A Sphinx extension for the course book: each budget gets its own notebook cache.

``jupyter-book build`` caches executed notebooks keyed on their code only. Without
this extension a fast preview (``COURSE_BUDGET=smoke jupyter-book build .``) would
leave its smoke outputs in the cache, and every later build would show them as if
they were the quick or full budget's results. Here the budget (``COURSE_BUDGET``,
else the one the notebooks choose on this machine) names the cache folder
(``_build/.jupyter_cache-quick``), and it is a Sphinx setting that invalidates the
pages, so a change of budget re-renders every page from that budget's cache.

Enabled in ``_config.yml`` (``sphinx: extra_extensions: [icdl.book]``).
"""

from __future__ import annotations

from pathlib import Path


def _key_cache_on_budget(app, config) -> None:
    if not config.nb_execution_cache_path:  # myst-nb's default is <outdir>/../.jupyter_cache
        config.nb_execution_cache_path = str(Path(app.outdir).parent / f".jupyter_cache-{config.course_budget}")


def setup(app):
    from .env import get_budget

    budget = get_budget()
    app.add_config_value("course_budget", budget, "env")  # a new value re-reads every page
    app.connect("config-inited", _key_cache_on_budget)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
