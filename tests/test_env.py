"""icdl.env: budget, device, repo root, seeding, and the set-up line."""

import random
import sys
import types
from pathlib import Path

import icdl
import numpy as np
import pytest
import torch
from icdl import env


@pytest.fixture
def clean_env(monkeypatch):
    """No budget, CI, device or Colab hints from the test run itself."""
    for name in ("COURSE_BUDGET", "CI", "COURSE_DEVICE", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_ci_selects_smoke(clean_env, value):
    clean_env.setenv("CI", value)
    assert env.in_ci() and env.get_budget() == "smoke"


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_false_values_do_not_count(clean_env, value):
    clean_env.setenv("CI", value)
    assert not env.in_ci()


def test_without_ci_budget_follows_the_device(clean_env):
    clean_env.setattr(env, "get_device", lambda prefer=None: torch.device("cpu"))
    assert env.get_budget() == "quick"
    clean_env.setattr(env, "get_device", lambda prefer=None: torch.device("cuda"))
    assert env.get_budget() == "full"


@pytest.mark.parametrize("value, budget", [("quick", "quick"), ("FULL", "full"), (" smoke ", "smoke")])
def test_course_budget_overrides_ci(clean_env, value, budget):
    clean_env.setenv("CI", "true")
    clean_env.setenv("COURSE_BUDGET", value)
    assert env.get_budget() == budget


def test_bad_budget_is_a_clear_error(clean_env):
    clean_env.setenv("COURSE_BUDGET", "fast")
    with pytest.raises(ValueError, match=r"COURSE_BUDGET='fast' is not a budget; use one of smoke, quick, full"):
        env.get_budget()


def test_by_budget_and_pick(clean_env):
    assert env.by_budget(1, 2, 3, budget="quick") == 2
    clean_env.setenv("COURSE_BUDGET", "full")
    assert env.by_budget(smoke="s", quick="q", full="f") == "f"
    cfg = env.setup(quiet=True)
    assert cfg.pick(smoke=10, quick=20, full=30) == 30
    clean_env.setenv("COURSE_BUDGET", "smoke")
    assert env.setup(quiet=True).pick(smoke=10, quick=20, full=30) == 10


def test_repo_root_finds_the_checkout_from_below(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\n")
    (tmp_path / "utils").mkdir()
    deep = tmp_path / "chapters" / "sub"
    deep.mkdir(parents=True)
    assert env.repo_root(deep) == tmp_path.resolve()


def test_repo_root_of_this_checkout():
    root = env.repo_root()
    assert (root / "utils" / "icdl" / "env.py").is_file() and (root / "_toc.yml").is_file()
    # Outside any checkout it falls back to the folder holding utils/ of the imported package.
    assert env.repo_root("/") == Path(icdl.__file__).resolve().parents[2]


def test_get_device(clean_env):
    assert env.get_device("cpu") == torch.device("cpu")
    clean_env.setenv("COURSE_DEVICE", "cpu")
    assert env.get_device() == torch.device("cpu")
    clean_env.delenv("COURSE_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert env.get_device().type == expected


def draw():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seeding_is_reproducible():
    env.seed_everything(3)
    first = draw()
    env.seed_everything(3)
    assert draw() == first
    env.seed_everything(4)
    assert draw() != first


def test_setup_prints_one_line_and_seeds(clean_env, capsys):
    clean_env.setenv("CI", "true")
    cfg = env.setup(seed=5)
    out, err = capsys.readouterr()
    assert out.strip().startswith(f"budget: smoke | device: {cfg.device} | seed: 5 | icdl {icdl.__version__} | "
                                  f"torch {torch.__version__} | CI")
    assert len(out.strip().splitlines()) == 1 and err == ""
    assert (cfg.budget, cfg.seed, cfg.ci, cfg.colab) == ("smoke", 5, True, False)
    after_setup = torch.rand(2).tolist()
    env.seed_everything(5)
    assert torch.rand(2).tolist() == after_setup


def fake_colab_on_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(env, "get_device", lambda prefer=None: torch.device("cpu"))


def test_gpu_advice_is_loud_in_colab_on_cpu(clean_env, capsys):
    fake_colab_on_cpu(clean_env)
    cfg = env.setup(needs_gpu=True)
    out, err = capsys.readouterr()
    assert cfg.colab and "| Colab" in out
    assert env.GPU_ADVICE in err and "!" * 78 in err
    assert "Runtime > Change runtime type" in err


def test_no_gpu_advice_when_not_needed_or_not_colab(clean_env, capsys):
    fake_colab_on_cpu(clean_env)
    env.setup(needs_gpu=False)
    assert capsys.readouterr().err == ""
    clean_env.delitem(sys.modules, "google.colab")
    env.setup(needs_gpu=True)  # a laptop in the quick budget: CPU is expected there
    assert capsys.readouterr().err == ""
    clean_env.setenv("COURSE_BUDGET", "full")  # but the full recipe on a CPU deserves the warning
    env.setup(needs_gpu=True)
    assert env.GPU_ADVICE in capsys.readouterr().err


def test_cpu_threads_follow_the_idle_cores(monkeypatch):
    """On a busy machine fewer threads (oversubscribed threads wait for each other); OMP_NUM_THREADS wins."""
    from icdl.env import choose_cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_cpu_threads(cores=2, busy=0.1) == (2, "2 cores")
    threads, why = choose_cpu_threads(cores=2, busy=1.2)
    assert threads == 1 and "1.2 of 2 cores busy" in why
    assert choose_cpu_threads(cores=2, busy=5.0)[0] == 1  # never fewer than one
    assert choose_cpu_threads(cores=8, busy=2.0)[0] == 6
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_cpu_threads(cores=2, busy=1.9) == (3, "OMP_NUM_THREADS")


def test_busy_cores_measures_this_machine():
    from icdl.env import busy_cores

    busy = busy_cores(2, seconds=0.05)
    assert busy is None or 0.0 <= busy <= 2.0 + 1e-9


def test_setup_says_how_many_cpu_threads(capsys, monkeypatch):
    import torch
    from icdl import env

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    before = torch.get_num_threads()
    try:
        env.setup(quiet=False)
        assert "| 1 CPU thread (OMP_NUM_THREADS)" in capsys.readouterr().out
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# The set-up cell's report (env.setup_report), called by the first cell of every notebook.


def test_setup_report_prints_the_versions_and_the_device(clean_env, capsys):
    import platform

    import torchvision

    clean_env.setattr(env, "get_device", lambda prefer=None: torch.device("cpu"))
    env.setup_report(icdl.__version__)
    out, err = capsys.readouterr()
    assert out.strip() == (f"Python {platform.python_version()} | torch {torch.__version__} | "
                           f"torchvision {torchvision.__version__} | icdl {icdl.__version__} | device: cpu")
    assert err == ""  # same version, not in Colab: nothing to warn about


def test_cpu_advice_in_colab_says_how_to_switch_and_what_each_budget_costs(clean_env, capsys):
    fake_colab_on_cpu(clean_env)
    env.setup_report(icdl.__version__)
    err = capsys.readouterr().err
    assert env.cpu_runtime_advice("quick") in err
    assert "Runtime > Change runtime type > Hardware accelerator: GPU" in err
    assert "runs its `quick` budget" in err and "runs its `full` budget" in err
    clean_env.setenv("COURSE_BUDGET", "full")  # forced full on a CPU: say that it will be very slow
    env.setup_report(icdl.__version__)
    err = capsys.readouterr().err
    assert "set to its `full` budget (COURSE_BUDGET=full)" in err and "very slow" in err


def test_no_cpu_advice_on_a_colab_gpu_or_off_colab(clean_env, capsys):
    clean_env.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    clean_env.setattr(env, "get_device", lambda prefer=None: torch.device("cuda"))
    clean_env.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    env.setup_report(icdl.__version__)
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("device: cuda (Tesla T4)") and err == ""
    clean_env.delitem(sys.modules, "google.colab")
    clean_env.setattr(env, "get_device", lambda prefer=None: torch.device("cpu"))
    env.setup_report(icdl.__version__)  # a laptop CPU: the quick budget is what it is for
    assert capsys.readouterr().err == ""


def test_version_mismatch_says_which_versions_and_how_to_update(clean_env, capsys):
    assert env.version_mismatch_message("0.1.0", "0.1.0") == ""
    local = env.version_mismatch_message("0.2.0", "0.1.0", colab=False)
    assert "written for the course package icdl 0.2.0, but icdl 0.1.0 is the one loaded here" in local
    assert "`git pull`" in local and "restart the kernel" in local
    colab = env.version_mismatch_message("0.2.0", "0.1.0", colab=True)
    assert "Runtime > Disconnect and delete runtime" in colab and "git pull" not in colab

    clean_env.setattr(env, "get_device", lambda prefer=None: torch.device("cpu"))
    env.setup_report("0.0.1")  # a notebook written for another version than the package loaded
    err = capsys.readouterr().err
    assert f"written for the course package icdl 0.0.1, but icdl {icdl.__version__} is the one loaded" in err
    assert "`git pull`" in err
