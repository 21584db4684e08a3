"""Make the student version of the course: every file an assignment needs, without ``solutions/``.

An instructor keeps the course (with its solutions) private and publishes the
student version, for example as its own repository that Colab clones::

    python -m icdl.release ../course-students --repo-url https://github.com/ORG/course-students

The release holds every file git tracks except the answers: ``solutions/``,
and the test suite with its CI files (the tests pass right answers to every
check). With ``--repo-url`` the copy's ``_config.yml`` names that
repository and every notebook's Colab badge and set-up cell points at it (the
same rewrite as ``python -m icdl.notebooks sync``), so a student who opens an
exercise in Colab clones the student version, never the private one. The
release is checked before the command ends: no solution cell, no
``### BEGIN SOLUTION`` marker, exercises generated from the current solutions.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .env import repo_root
from .exercises import out_of_step

LEFT_OUT = ("solutions/", "tests/", ".ci/", "conftest.py", "pytest.ini", "requirements-ci.txt")
MARKER = "### BEGIN SOLUTION"


def tracked_files(root: Path) -> list[str]:
    """Paths git tracks in ``root`` (a course checkout), relative to it."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"{root} is not a git checkout of the course (git ls-files failed: {exc})") from None
    return [p for p in out.decode().split("\0") if p]


def released(paths: list[str]) -> list[str]:
    """The paths a student version holds: everything but the answers and the tests."""
    return [p for p in paths if not p.startswith(LEFT_OUT)]


def leaks(out: Path) -> list[str]:
    """What in a release still carries an answer: a notebook with a solution marker, a solutions/ or tests/ folder."""
    found = [p.relative_to(out).as_posix() for p in out.rglob("*.ipynb") if MARKER in p.read_text(errors="ignore")]
    return found + [f"{d}/" for d in ("solutions", "tests") if (out / d).exists()]


def release(out: Path, root: Path | None = None, repo_url: str | None = None) -> list[str]:
    """Write the student version into the empty or new folder ``out``; returns the paths written."""
    root = Path(root or repo_root()).resolve()
    out = Path(out).resolve()
    if repo_url is not None:
        repo_url = repo_url.removesuffix(".git").rstrip("/")
        if not re.fullmatch(r"https://[\w.-]+/[\w.-]+/[\w.-]+", repo_url):
            raise SystemExit(f"--repo-url should look like https://github.com/OWNER/REPO, not {repo_url!r}; "
                             f"nothing was written")
    if out == root or root in out.parents:
        raise SystemExit(f"{out} is inside the course checkout {root}: choose a folder outside it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(f"{out} exists and is not an empty folder: nothing was written")
    stale = out_of_step(root)
    if stale:
        raise SystemExit("exercises/ is out of step with solutions/ (" + ", ".join(stale) + "): run "
                         "`python -m icdl.exercises generate` first; nothing was written")
    paths = released(tracked_files(root))
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / path, target)
    if repo_url:
        _point_at(out, repo_url)
    problems = leaks(out)
    if problems:
        shutil.rmtree(out)
        raise SystemExit("the release would still hold answers (" + ", ".join(problems[:5]) + "); it was removed")
    return paths


def _point_at(out: Path, url: str) -> None:
    """Make the release's ``_config.yml`` and every notebook name the repository ``url``."""
    import nbformat

    from .notebooks import notebook_paths, sync_notebook

    config = out / "_config.yml"
    text = config.read_text()
    new, count = re.subn(r"^(repository:\s*\n(?:\s+.*\n)*?\s+url:\s*)(\S+)", rf"\g<1>{url}", text, count=1, flags=re.M)
    if count != 1:
        raise SystemExit("_config.yml has no `repository: url:` entry")
    config.write_text(new)
    for path in notebook_paths(out):
        nb = nbformat.read(path, as_version=4)
        if sync_notebook(nb, url, path.relative_to(out).as_posix()):
            nbformat.write(nb, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icdl.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a new or empty folder outside the course checkout")
    parser.add_argument("--repo-url", help="the repository students clone (rewrites badges and set-up cells)")
    args = parser.parse_args(argv)
    paths = release(args.out, repo_url=args.repo_url)
    exercises = sum(p.startswith("exercises/") for p in paths)
    print(f"wrote {len(paths)} files ({exercises} exercise notebooks, no solutions/) to {args.out}")
    if args.repo_url:
        print(f"every notebook now clones {args.repo_url} in Colab; push the folder there:")
        print(f"  cd {args.out} && git init -b main && git add -A && git commit -m 'Student version' "
              f"&& git remote add origin {args.repo_url}.git && git push -u origin main")
    return 0


if __name__ == "__main__":
    sys.exit(main())
