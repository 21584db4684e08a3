"""Test-run settings that reach every notebook kernel through the environment.

* ``COURSE_BUDGET=smoke`` unless set: notebooks run in seconds.
* ``TQDM_DISABLE=1``: progress bars are noise in test logs.
* ``COURSE_STRICT_CHECKS=1`` for ``solutions/`` only: a failing check raises
  there, so a broken solution or checker fails CI; exercise notebooks run
  untouched and their checks report "not attempted" without raising.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_BUDGET", "smoke")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Runs before nbval starts the notebook's kernel, which inherits this.
    if Path(str(item.fspath)).parent.name == "solutions":
        os.environ["COURSE_STRICT_CHECKS"] = "1"
    else:
        os.environ.pop("COURSE_STRICT_CHECKS", None)


@pytest.fixture
def no_open_figures():
    """Fails a test whose figures are left open in pyplot: a figure is returned closed, shown once."""
    import matplotlib.pyplot as plt

    yield
    leaked = plt.get_fignums()
    plt.close("all")
    assert leaked == []  # figures come back closed: shown once, never leaked
