"""Run one submission's cells in a fresh kernel: the grader's worker process.

The grader starts this file's source with ``python -c`` (from the copy it read
when it started, not from disk) in a new session, writes one job as JSON on its
standard input and reads one result as JSON from its standard output. The
kernel's own standard output and error go to /dev/null, so nothing the
submission prints reaches this channel. It needs only the standard library,
nbformat and nbclient.

Job: ``notebook`` (JSON text: the grader's set-up cell, the submission's cells,
the grader's harness cell last), ``cwd``, ``env``, ``cell_timeout`` (seconds per
cell), ``notebook_timeout`` (seconds for all the submission's cells),
``harness_timeout``, ``grace`` (seconds a kernel has to stop after an
interrupt), ``max_output`` (characters kept per output).

Result: ``cells`` (the submission's cells with their outputs), ``errors``
(1-based numbers of cells that raised), ``interrupted`` (``[number, seconds]``
of cells stopped by an interrupt), ``skipped_from`` (the first cell not run
because the notebook's limit was spent, or null), ``stopped`` (why the run ended
before the harness could run, or null), ``harness`` (``ran``, ``timed_out``, ``text``: what the harness cell
printed), ``seconds``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from queue import Empty


def _truncate(outputs: list, limit: int) -> list:
    """Outputs of one cell, each text cut to ``limit`` characters and large images dropped."""
    kept = []
    for out in outputs:
        out = dict(out)
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            if len(text) > limit:
                out["text"] = text[:limit] + f"\n[... {len(text) - limit:,} more characters not kept by the grader]\n"
        elif out.get("output_type") in ("display_data", "execute_result"):
            data = {}
            for mime, value in (out.get("data") or {}).items():
                size = len(value) if isinstance(value, str) else len(json.dumps(value))
                data[mime] = value if size <= 4 * limit else f"[{mime}, {size:,} characters, not kept by the grader]"
            out["data"] = data
        elif out.get("output_type") == "error":
            out["traceback"] = [line[:limit] for line in out.get("traceback", [])[-40:]]
            out["evalue"] = str(out.get("evalue", ""))[:limit]
        kept.append(out)
    return kept[:200]


async def _run(job: dict) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellTimeoutError, DeadKernelError

    nb = nbformat.reads(job["notebook"], as_version=4)
    last = len(nb.cells) - 1  # the harness; cell 0 is the set-up
    deadline = [None]

    class Client(NotebookClient):
        timed_out = False

        async def _async_handle_timeout(self, timeout, cell=None):
            self.timed_out = True
            return await super()._async_handle_timeout(timeout, cell)

    def timeout_for(cell) -> int:
        if cell is nb.cells[last]:
            return int(job["harness_timeout"])
        if cell is nb.cells[0] or deadline[0] is None:
            return int(job["cell_timeout"])
        return max(1, min(int(job["cell_timeout"]), int(deadline[0] - time.monotonic() + 0.999)))

    client = Client(nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True, timeout_func=timeout_for,
                    error_on_timeout={"ename": "TimeoutError", "evalue": "interrupted by the grader", "traceback": []},
                    iopub_timeout=2, shutdown_kernel="immediate", record_timing=False)
    result = {"errors": [], "interrupted": [], "stopped": None, "skipped_from": None,
              "harness": {"ran": False, "timed_out": False, "text": ""}}
    start = time.monotonic()
    kernel_pid = None

    async def idle_after_interrupt() -> bool:
        """True when the kernel answers again within the grace period (it obeyed the interrupt)."""
        msg_id = client.kc.kernel_info()
        end = time.monotonic() + float(job["grace"])
        while time.monotonic() < end:
            try:
                msg = await client.kc.shell_channel.get_msg(timeout=0.25)
            except Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                await asyncio.sleep(0.2)  # let the interrupted cell's last outputs arrive
                return True
        return False

    try:
        async with client.async_setup_kernel(env=job["env"], cwd=job["cwd"], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            try:
                kernel_pid = client.km.provisioner.pid
            except AttributeError:
                kernel_pid = None
            msg_id = client.kc.kernel_info()
            await client.async_wait_for_reply(msg_id)
            for index, cell in enumerate(nb.cells):
                number = index  # the submission's own 1-based cell number (cell 0 is the grader's set-up)
                harness = index == last
                if index == 1:
                    deadline[0] = time.monotonic() + float(job["notebook_timeout"])
                if 0 < index < last and time.monotonic() >= deadline[0]:
                    if cell.cell_type == "code" and cell.source.strip() and result.get("skipped_from") is None:
                        result["skipped_from"] = number  # over the notebook's limit: on to the grader's check
                    continue
                client.timed_out = False
                began = time.monotonic()
                try:
                    await client.async_execute_cell(cell, index, execution_count=index or None)
                except DeadKernelError:
                    where = "the grader's check" if harness else (f"cell {number}" if index else "the set-up")
                    result["stopped"] = f"the kernel died in {where} (exit, a crash or a kill)"
                except (CellTimeoutError, CellControlSignal) as exc:  # not expected with interrupt_on_timeout
                    result["stopped"] = f"cell {number}: {type(exc).__name__}"
                if harness:  # what it printed counts, even if it was cut short
                    result["harness"]["ran"] = True
                    result["harness"]["timed_out"] = client.timed_out
                    result["harness"]["text"] = "".join(
                        o.get("text", "") for o in cell.get("outputs", [])
                        if o.get("output_type") == "stream" and o.get("name") == "stdout")[:2_000_000]
                if harness or result["stopped"]:
                    break
                if client.timed_out:
                    seconds = round(time.monotonic() - began)
                    if not await idle_after_interrupt():
                        result["stopped"] = (f"cell {number} ran over its time limit and did not stop when "
                                             f"interrupted, so the kernel was stopped")
                        break
                    result["interrupted"].append([number, seconds])
                elif index and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    result["errors"].append(number)
    except DeadKernelError:
        result["stopped"] = result["stopped"] or "the kernel died"
    except Exception as exc:  # the kernel could not start, or nbclient failed
        result["stopped"] = result["stopped"] or f"could not run: {type(exc).__name__}: {str(exc)[:300]}"
    finally:
        if kernel_pid:
            try:
                os.killpg(kernel_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
    result["seconds"] = round(time.monotonic() - start, 1)
    limit = int(job["max_output"])
    result["cells"] = [{"cell_type": c.cell_type, "source": c.source,
                        "outputs": _truncate(c.get("outputs", []), limit) if c.cell_type == "code" else []}
                       for c in nb.cells[1:last]]
    return result


def main() -> None:
    job = json.loads(sys.stdin.read())
    result = asyncio.run(_run(job))
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
