"""Where am I running, on what, and how much time may I spend?

Every notebook starts with ``cfg = env.setup()`` which

* finds the course repository root,
* detects Colab and CI,
* picks the device (cuda, then mps, then cpu),
* seeds Python, NumPy and torch,
* chooses the **budget** (``smoke``, ``quick`` or ``full``) and
* prints one line saying all of that, so outputs are never ambiguous.

Before that, the set-up cell (the first cell of every notebook) calls
``setup_report(COURSE_VERSION)``: the versions of Python, torch, torchvision and
``icdl`` and the device; in Colab without a GPU, what that costs and how to switch;
and a clear message when the notebook was written for another version of ``icdl``.

Budgets (override with the environment variable ``COURSE_BUDGET``):

========  =========================================  ================================
budget    chosen automatically when                  meaning
========  =========================================  ================================
smoke     the ``CI`` variable is set                 seconds per notebook, tiny data
quick     no GPU                                     minutes on a laptop CPU
full      a CUDA GPU is available                    the real recipe and accuracy
========  =========================================  ================================
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUDGETS = ("smoke", "quick", "full")


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def in_ci() -> bool:
    """True on a continuous-integration machine (the ``CI`` variable is set)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The course checkout: the first folder upwards holding ``_toc.yml`` and ``utils/``.

    Falls back to the folder above the installed package, which is the
    checkout for an editable install or a ``sys.path`` entry.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "utils").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


def get_device(prefer: str | None = None):
    """The best available ``torch.device``: cuda, then mps, then cpu.

    ``prefer`` (or the environment variable ``COURSE_DEVICE``) forces one.
    """
    import torch

    name = prefer or os.environ.get("COURSE_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_budget() -> str:
    """``smoke``, ``quick`` or ``full``: ``COURSE_BUDGET`` if set, else chosen from the machine."""
    forced = os.environ.get("COURSE_BUDGET", "").strip().lower()
    if forced:
        if forced not in BUDGETS:
            raise ValueError(
                f"COURSE_BUDGET={forced!r} is not a budget; use one of {', '.join(BUDGETS)}."
            )
        return forced
    if in_ci():
        return "smoke"
    return "full" if get_device().type == "cuda" else "quick"


def by_budget(smoke, quick, full, budget: str | None = None):
    """Pick the value for the current budget: ``by_budget(smoke=1, quick=5, full=30)``."""
    return {"smoke": smoke, "quick": quick, "full": full}[budget or get_budget()]


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices).

    ``deterministic=True`` also asks cuDNN for deterministic kernels, which is
    slower; CPU runs are repeatable without it.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _cpu_times() -> tuple[float, float] | None:
    """(idle, total) CPU time of the whole machine so far, from Linux's /proc/stat; None elsewhere."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0.0), sum(fields)


def busy_cores(cores: int, seconds: float = 0.3) -> float | None:
    """How many of ``cores`` other programs keep busy right now (sampled over ``seconds``); None if unknown."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = _cpu_times()
    idle, total = second[0] - first[0], second[1] - first[1]
    return cores * (1.0 - idle / total) if total > 0 else None


def choose_cpu_threads(cores: int | None = None, busy: float | None = None) -> tuple[int, str]:
    """Threads for torch on a CPU, and why: ``OMP_NUM_THREADS`` if set, else the cores other work leaves idle.

    Two threads on two cores that other programs are also using wait for each other at every layer:
    training ran about four times slower than with one thread. So a busy machine gets fewer threads.
    """
    forced = os.environ.get("OMP_NUM_THREADS", "").strip()
    if forced.isdigit() and int(forced) > 0:
        return int(forced), "OMP_NUM_THREADS"
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if busy is None:
        busy = busy_cores(cores)
    if busy is None:
        return cores, f"{cores} cores"
    threads = max(1, min(cores, round(cores - busy)))
    why = f"{cores} cores" if threads == cores else f"{busy:.1f} of {cores} cores busy with other work"
    return threads, why


GPU_ADVICE = (
    "No GPU found. Training in this notebook will be slow on a CPU.\n"
    "In Colab: Runtime > Change runtime type > Hardware accelerator: GPU (T4), "
    "then Runtime > Restart session and run all cells again."
)


def cpu_runtime_advice(budget: str) -> str:
    """What a learner on a Colab runtime without a GPU should know: what each choice costs, and how to switch."""
    if budget == "full":
        here = ("No GPU on this runtime, yet this notebook is set to its `full` budget (COURSE_BUDGET=full): "
                "the real recipe is meant for a GPU and will be very slow on this CPU.")
    else:
        here = (f"No GPU on this runtime, so this notebook runs its `{budget}` budget: data and training cut down "
                "to finish in minutes on a CPU, with lower accuracy than the text discusses.")
    return (
        here + "\n"
        "With a GPU it runs its `full` budget: the real recipe, and the results the text discusses.\n"
        "To switch: Runtime > Change runtime type > Hardware accelerator: GPU (T4) > Save, "
        "then run the notebook again from the top."
    )


def version_mismatch_message(wanted: str, installed: str, colab: bool | None = None) -> str:
    """Empty when the notebook and the course package agree; else what differs and how to update."""
    if wanted == installed:
        return ""
    colab = in_colab() if colab is None else colab
    if colab:
        update = ("To update: Runtime > Disconnect and delete runtime, then run this notebook again from the top "
                  "(the first cell fetches a fresh copy of the course).")
    else:
        update = ("To update: run `git pull` in your copy of the course repository (or clone it again), "
                  "then restart the kernel and run this notebook again from the top.")
    return (f"This notebook was written for the course package icdl {wanted}, "
            f"but icdl {installed} is the one loaded here: some cells may fail or print other results.\n"
            + update)


def setup_report(course_version: str | None = None) -> None:
    """The set-up cell's report: versions and device; in Colab on a CPU, how to get a GPU; a version mismatch.

    ``course_version`` is the version of ``icdl`` the notebook was written for.
    """
    import platform

    import torch

    from . import __version__

    try:
        import torchvision

        vision = torchvision.__version__
    except ImportError:
        vision = "not installed"
    device = get_device()
    name = f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""
    print(f"Python {platform.python_version()} | torch {torch.__version__} | torchvision {vision} | "
          f"icdl {__version__} | device: {device}{name}")
    warnings = []
    if course_version:
        warnings.append(version_mismatch_message(course_version, __version__))
    if in_colab() and device.type == "cpu":
        warnings.append(cpu_runtime_advice(get_budget()))
    for text in filter(None, warnings):
        bar = "!" * 78
        print(f"{bar}\n{text}\n{bar}", file=sys.stderr)


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` found: use ``cfg.device`` and ``cfg.budget`` in the notebook."""

    budget: str
    device: object  # torch.device
    seed: int
    root: Path
    colab: bool
    ci: bool
    started: float = field(default_factory=time.perf_counter, compare=False)  # for the wall time of the run

    def pick(self, smoke, quick, full):
        """``cfg.pick(smoke=..., quick=..., full=...)``: the value for this budget."""
        return by_budget(smoke, quick, full, self.budget)


def setup(seed: int = 0, needs_gpu: bool = False, quiet: bool = False) -> Setup:
    """Seed, choose device and budget, and print one line that says so.

    ``needs_gpu=True`` marks a training notebook: when it starts on a CPU in
    Colab (or in the full budget anywhere) it prints :data:`GPU_ADVICE` loudly.
    """
    import torch

    from . import __version__

    seed_everything(seed)
    device = get_device()
    threads_note = ""
    if device.type == "cpu":
        # Tiny float values (denormals), common in deep plain nets and small initial weights, are
        # many times slower on a CPU; flushing them to zero changes no result worth keeping.
        torch.set_flush_denormal(True)
        threads, why = choose_cpu_threads()
        torch.set_num_threads(threads)
        threads_note = f" | {threads} CPU thread{'s' if threads > 1 else ''} ({why})"
    cfg = Setup(
        budget=get_budget(),
        device=device,
        seed=seed,
        root=repo_root(),
        colab=in_colab(),
        ci=in_ci(),
    )
    if not quiet:
        where = "Colab" if cfg.colab else ("CI" if cfg.ci else "local")
        print(
            f"budget: {cfg.budget} | device: {device} | seed: {seed} | "
            f"icdl {__version__} | torch {torch.__version__} | {where}{threads_note}"
        )
    if needs_gpu and device.type == "cpu" and (cfg.colab or cfg.budget == "full"):
        bar = "!" * 78
        print(f"{bar}\n{GPU_ADVICE}\n{bar}", file=sys.stderr)
    return cfg
