"""The publishing workflow builds the book with the README's first command, online, on real data.

It cannot run here (it needs GitHub and the internet), so these tests read it: the
build step must be the README's command, the environment must let the course
download real datasets and refuse stand-ins, the HTML must be what Pages deploys,
and the practice page must say which budget and data the published pages show.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from unittest import mock

import yaml

from icdl import env

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "publish-book.yml"


def readme_build_command() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    commands = [line.strip() for block in blocks for line in block.splitlines()
                if line.strip() and not line.lstrip().startswith("#") and "jupyter-book build" in line]
    assert len(commands) == 1, f"README's bash blocks should hold one book-build command, found {commands}"
    return commands[0]


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job: str) -> list[dict]:
    return workflow()["jobs"][job]["steps"]


def test_the_build_step_runs_the_readmes_first_command():
    runs = [s["run"].strip() for s in steps("build") if "jupyter-book build" in s.get("run", "")]
    assert runs == [readme_build_command()]


def test_the_build_downloads_real_data_and_refuses_stand_ins():
    job_env = {k: str(v) for k, v in workflow()["jobs"]["build"]["env"].items()}
    with mock.patch.dict(os.environ, job_env, clear=False):
        assert not env.in_ci(), "with CI set the course never downloads, and the pages would show stand-in results"
        assert env.get_budget() == "quick"
    assert job_env["COURSE_DATA"] == "real"


def test_pages_deploys_the_html_the_build_wrote():
    uploads = [s for s in steps("build") if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert [s["with"]["path"] for s in uploads] == ["_build/html"]
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in steps("deploy"))
    assert workflow()["jobs"]["deploy"]["needs"] == "build"
    permissions = workflow()["permissions"]
    assert permissions["pages"] == "write" and permissions["id-token"] == "write"
    triggers = workflow()[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]


def test_the_practice_page_says_what_the_published_pages_show():
    job_env = workflow()["jobs"]["build"]["env"]
    page = (ROOT / "practice" / "running_the_notebooks.md").read_text()
    assert WORKFLOW.relative_to(ROOT).as_posix() in page
    assert f"`{job_env['COURSE_BUDGET']}` budget" in page
    for dataset in ("CIFAR-10", "MNIST", "Fashion-MNIST"):
        assert dataset in page
