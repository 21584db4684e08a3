"""The course package must install in Colab without replacing Colab's torch, torchvision or ipywidgets.

pip would replace them if ``icdl`` or anything it pulls in asked for them, so the
whole dependency tree of ``utils/pyproject.toml`` is walked here, through the
metadata of the installed distributions.
"""

import tomllib
from importlib import metadata

from icdl.env import repo_root
from packaging.requirements import Requirement

FORBIDDEN = {"torch", "torchvision", "ipywidgets"}


def _needed(requirement: Requirement) -> bool:
    """Requirements for this platform, not those of optional extras (``; extra == "..."``)."""
    return requirement.marker is None or requirement.marker.evaluate({"extra": ""})


def dependency_tree() -> dict[str, str]:
    """Every distribution icdl needs, mapped to the one that asked for it."""
    pyproject = tomllib.loads((repo_root() / "utils" / "pyproject.toml").read_text())
    todo = [(Requirement(r), "icdl") for r in pyproject["project"]["dependencies"]]
    seen: dict[str, str] = {}
    while todo:
        requirement, parent = todo.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen or not _needed(requirement):
            continue
        seen[name] = parent
        todo += [(Requirement(r), name) for r in metadata.requires(name) or []]
    return seen


def test_icdl_pulls_in_neither_torch_torchvision_nor_ipywidgets():
    tree = dependency_tree()
    assert "numpy" in tree and "tqdm" in tree  # the walk really ran
    offenders = {name: parent for name, parent in tree.items() if name in FORBIDDEN}
    assert not offenders, f"installing utils/ would replace Colab's own packages: {offenders} (name: asked for by)"


def test_version_is_single_sourced():
    import icdl

    assert metadata.version("icdl") == icdl.__version__
