"""Keeping a submission's processes on a leash.

On Linux the grader makes itself a *child subreaper*: every process a
submission starts, even one that detached itself (``setsid``, a double fork),
is re-parented to the grader when its own parent dies, so
:func:`kill_descendants` finds and kills it after each notebook. The grader
also makes its own memory unreadable by other processes of the same user
(``PR_SET_DUMPABLE`` 0), so a submission cannot read the per-notebook key out of
it. Elsewhere only process groups are killed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
LINUX = sys.platform.startswith("linux")


def _prctl(option: int, value: int) -> bool:
    if not LINUX:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt every orphaned descendant (Linux); True when it worked."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def hide_memory() -> bool:
    """Make this process's memory, environment and file descriptors unreadable to other non-root processes."""
    return _prctl(PR_SET_DUMPABLE, 0)


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) for every process in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()  # the command name may hold spaces and parentheses
        if len(fields) > 1:
            table[int(entry)] = (int(fields[1]), fields[0].decode())
    return table


def descendants(pid: int | None = None) -> list[int]:
    """Living (not zombie) descendants of ``pid`` (default: this process), parents first."""
    if not LINUX or not os.path.isdir("/proc"):
        return []
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid or os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if table[p][1] != "Z"]


def reap() -> None:
    """Collect the exit status of every finished child, so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_group(pgid: int | None) -> None:
    if pgid and pgid > 1 and pgid != os.getpgrp():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_descendants(rounds: int = 50) -> int:
    """SIGKILL every descendant of this process (stopped first, so none can fork away); returns how many.

    Call it only when no child of this process should be alive.
    """
    killed: set[int] = set()
    for _ in range(rounds):
        found = descendants()
        if not found:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in found:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        killed.update(found)
        time.sleep(0.02)
        reap()
    reap()
    return len(killed)
