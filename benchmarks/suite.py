"""How long does the test suite take? (A benchmark, not a timed test.)

    python benchmarks/suite.py                 # every notebook, then the whole suite
    python benchmarks/suite.py --no-suite      # only the notebooks
    python benchmarks/suite.py chapters/02_lenet.ipynb ...

Runs each notebook of chapters/, solutions/ and exercises/ in the smoke budget
(with nbclient, in a fresh kernel, one thread) and then the README's test
command (read from .ci/run, so the two cannot drift), and prints the wall times
as a table. The target: the whole suite well under 20 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from icdl.env import repo_root
from icdl.grade import run_notebook
from icdl.notebooks import notebook_paths

ROOT = repo_root()
SMOKE_ENV = {"CI": "true", "COURSE_BUDGET": "smoke", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
             "MPLBACKEND": "Agg"}


def suite_command() -> list[str]:
    """The pytest command line that .ci/run (and the README) runs."""
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python -m pytest")]
    return shlex.split(lines[0].split("<")[0])


def time_notebook(path: Path) -> tuple[float, str]:
    strict = {"COURSE_STRICT_CHECKS": "1"} if path.parent.name == "solutions" else {}
    run = run_notebook(path, timeout=600, allow_errors=False, cwd=path.parent, extra_env={**SMOKE_ENV, **strict})
    return run.seconds, run.status


def time_suite() -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable if c == "python" else c for c in suite_command()], cwd=ROOT,
                          env={**os.environ, **SMOKE_ENV}, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start, proc.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    parser.add_argument("--no-suite", action="store_true", help="skip the run of the whole test suite")
    args = parser.parse_args(argv)
    os.environ.update(SMOKE_ENV)
    paths = [p.resolve() for p in args.notebooks] or notebook_paths(ROOT)

    rows = []
    for path in paths:
        seconds, status = time_notebook(path)
        rows.append((path.relative_to(ROOT).as_posix(), seconds, status))
        print(f"  {rows[-1][0]}: {seconds:.1f} s ({status})", file=sys.stderr)
    if not args.no_suite:
        seconds, code = time_suite()
        rows.append((f"whole suite: {' '.join(suite_command())}", seconds, f"exit status {code}"))

    width = max([len("what")] + [len(r[0]) for r in rows])
    print(f"\n{'what':<{width}}  {'seconds':>8}  status")
    print(f"{'-' * width}  {'-' * 8}  ------")
    for what, seconds, status in rows:
        print(f"{what:<{width}}  {seconds:8.1f}  {status}")
    notebooks = [r for r in rows if not r[0].startswith("whole suite")]
    if notebooks:
        print(f"{'sum of notebooks':<{width}}  {sum(r[1] for r in notebooks):8.1f}")
    return 0 if all(r[2] in ("ok", "exit status 0") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
