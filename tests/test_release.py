"""`python -m icdl.release`: the student version of the course holds no answers, and its notebooks clone it."""

import json
import subprocess
import sys

import pytest
from icdl import release
from icdl.env import repo_root

ROOT = repo_root()
URL = "https://github.com/some-school/course-students"


def test_release_leaves_out_the_answers_and_points_colab_at_the_student_repository(tmp_path):
    out = tmp_path / "students"
    proc = subprocess.run([sys.executable, "-m", "icdl.release", str(out), "--repo-url", URL],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no solutions/" in proc.stdout and "git push" in proc.stdout
    assert not (out / "solutions").exists() and not (out / "tests").exists()
    exercises = sorted(p.name for p in (out / "exercises").glob("*.ipynb"))
    assert exercises == sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert (out / "utils" / "icdl" / "checks" / "core.py").is_file() and (out / "_toc.yml").is_file()
    for path in [*(out / "exercises").glob("*.ipynb"), *(out / "chapters").glob("*.ipynb")]:
        text = path.read_text()
        assert "### BEGIN SOLUTION" not in text, path
        nb = json.loads(text)
        rel = path.relative_to(out).as_posix()
        assert f"colab.research.google.com/github/some-school/course-students/blob/main/{rel}" in \
            "".join(nb["cells"][0]["source"]), rel
        assert f'REPO_URL = "{URL}.git"' in "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    assert f"url: {URL}" in (out / "_config.yml").read_text()
    # The course itself is untouched.
    assert "some-school" not in (ROOT / "_config.yml").read_text()


def test_release_without_a_url_keeps_the_course_url(tmp_path):
    out = tmp_path / "students"
    release.release(out)
    assert (out / "_config.yml").read_text() == (ROOT / "_config.yml").read_text()


@pytest.mark.parametrize("bad", ["not empty", "inside", "url"])
def test_release_refuses_bad_targets_and_writes_nothing(tmp_path, bad):
    out = tmp_path / "students"
    kwargs = {}
    if bad == "not empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif bad == "inside":
        out = ROOT / "_build" / "students"
    else:
        kwargs["repo_url"] = "git@github.com:x/y"
    with pytest.raises(SystemExit) as err:
        release.release(out, **kwargs)
    message = str(err.value)
    assert {"not empty": "not an empty folder", "inside": "inside the course checkout",
            "url": "should look like https://github.com/OWNER/REPO"}[bad] in message
    if bad == "not empty":
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    else:
        assert not out.exists()


def test_leaks_finds_a_solution_left_in_a_notebook(tmp_path):
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "01.ipynb").write_text('{"cells": [{"source": ["### BEGIN SOLUTION"]}]}')
    (tmp_path / "solutions").mkdir()
    assert release.leaks(tmp_path) == ["exercises/01.ipynb", "solutions/"]
