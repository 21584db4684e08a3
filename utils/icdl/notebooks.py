"""Keep every notebook's Colab badge and set-up cell in step with ``_config.yml``.

The repository URL is written once, in ``_config.yml`` (``repository: url:``).
This tool copies it into each notebook:

* the first markdown cell gets a Colab badge on the line after its ``# Title``;
* the first code cell becomes the set-up cell below (identical everywhere), with the
  version of the course package it was written for and the myst-nb tag
  ``remove-input``: the book shows the cell's report but not its code.

Usage::

    python -m icdl.notebooks sync            # rewrite chapters/, solutions/, exercises/
    python -m icdl.notebooks sync --check    # exit 1 and list notebooks out of step
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from .env import repo_root

NOTEBOOK_DIRS = ("chapters", "solutions", "exercises")
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"

# The myst-nb tag on the set-up cell: the book shows its report (versions, device) but not its code,
# which is plumbing for Colab; in the notebook the cell stays as it is.
SETUP_TAG = "remove-input"

SETUP_TEMPLATE = '''\
# Set-up, the same first cell in every notebook: makes the course package `icdl` importable.
# In Colab it fetches the course and installs `icdl` (it leaves torch alone); locally it finds your checkout.
import subprocess, sys
from pathlib import Path

REPO_URL = "{repo_url}"
COURSE_VERSION = "{version}"  # the version of `icdl` this notebook was written for
if "google.colab" in sys.modules:
    ROOT = Path("/content/course")
    if not (ROOT / "utils" / "icdl").is_dir():
        subprocess.run(["git", "clone", "--quiet", "--depth=1", REPO_URL, str(ROOT)], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(ROOT / "utils")], check=True)
else:
    ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "utils" / "icdl").is_dir())
sys.path.insert(0, str(ROOT / "utils"))
from icdl.env import setup_report
setup_report(COURSE_VERSION)'''


def repo_url(root: Path | None = None) -> str:
    """The repository URL from ``_config.yml`` (without a trailing ``.git``)."""
    text = (Path(root or repo_root()) / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise SystemExit("_config.yml has no `repository: url:` entry")
    return match.group(1).removesuffix(".git").rstrip("/")


def course_version(root: Path | None = None) -> str:
    """``icdl.__version__`` as written in ``utils/icdl/__init__.py`` of the checkout (not the imported copy)."""
    init = Path(root or repo_root()) / "utils" / "icdl" / "__init__.py"
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init.read_text(), re.M) if init.is_file() else None
    if match:
        return match.group(1)
    from . import __version__

    return __version__


def setup_cell_source(url: str, version: str | None = None) -> str:
    return SETUP_TEMPLATE.format(repo_url=url + ".git", version=version or course_version())


def colab_url(url: str, relpath: str, branch: str = "main") -> str:
    """``https://colab.research.google.com/github/OWNER/REPO/blob/main/PATH``."""
    owner_repo = url.split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{relpath}"


def badge_line(url: str, relpath: str) -> str:
    return f"[![Open In Colab]({BADGE_IMG})]({colab_url(url, relpath)})"


def sync_notebook(nb, url: str, relpath: str, version: str | None = None) -> list[str]:
    """Bring ``nb`` in step (in place); return what had to change.

    ``version`` is the course package version the set-up cell names (default: this checkout's).
    """
    changes = []
    md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if md is None or not md.source.lstrip().startswith("# "):
        raise ValueError(f"{relpath}: the first markdown cell must start with '# Title'")
    lines = md.source.splitlines()
    want = badge_line(url, relpath)
    badge_at = [i for i, line in enumerate(lines) if BADGE_IMG in line]
    if badge_at != [1] or lines[1] != want:
        lines = [line for line in lines if BADGE_IMG not in line]
        lines.insert(1, want)
        md.source = "\n".join(lines)
        changes.append("Colab badge")
    code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if code is None:
        raise ValueError(f"{relpath}: a notebook needs the set-up code cell")
    src = setup_cell_source(url, version)
    if code.source != src:
        if "REPO_URL" in code.source or not code.source.strip():
            code.source = src  # an older set-up cell: replace it
        else:  # the first code cell is the notebook's own: put the set-up cell before it
            first = code
            code = nbformat.v4.new_code_cell(src)
            nb.cells.insert(nb.cells.index(first), code)
        changes.append("set-up cell")
    tags = code.metadata.setdefault("tags", [])
    if SETUP_TAG not in tags:
        tags.append(SETUP_TAG)
        changes.append(f"set-up cell tag `{SETUP_TAG}`")
    return changes


def notebook_paths(root: Path) -> list[Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob("*.ipynb"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icdl.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_sync = sub.add_parser("sync", help="copy the repository URL into badges and set-up cells")
    p_sync.add_argument("--check", action="store_true", help="only report; exit 1 if out of step")
    p_sync.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    args = parser.parse_args(argv)

    root = repo_root()
    url = repo_url(root)
    version = course_version(root)
    stale = []
    for path in args.paths or notebook_paths(root):
        path = path.resolve()
        rel = path.relative_to(root).as_posix()
        nb = nbformat.read(path, as_version=4)
        changes = sync_notebook(nb, url, rel, version)
        if changes:
            stale.append(f"{rel}: {', '.join(changes)}")
            if not args.check:
                nbformat.write(nb, path)
    for line in stale:
        print(("out of step: " if args.check else "updated: ") + line)
    if args.check and stale:
        print("Run `python -m icdl.notebooks sync` to fix.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
