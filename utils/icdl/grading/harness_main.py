"""The grader's harness: runs inside a submission's kernel, as its last cell.

This file is never imported. :mod:`icdl.grading.harness` puts its source, and a
``CONFIG`` dict made for one submission, into the cell that the grader appends
to the notebook; the cell calls :func:`grade`. In order, it

1. switches off tracing and profiling hooks and any import hook the notebook
   added, and imports ``hmac``, ``hashlib``, ``json`` and ``base64`` afresh;
2. refuses to grade (a *void* line) when a thread started by the notebook is
   still running notebook code, or when the kernel's memory was made readable
   to other processes again: either could read this cell's key;
3. reads the hints and solutions the notebook asked for from its stand-in
   questions, then forgets every ``icdl`` module the notebook imported;
4. imports a fresh ``icdl``: the checks from the sources inside ``CONFIG``,
   every other module from the submission's copy of the package, each file
   read once and checked against its sha256 in ``CONFIG`` (a changed or missing
   file voids the grade);
5. sets the grader's budget and evaluates each question on the variables that
   answer it, by name, each within ``check_timeout`` seconds;
6. prints each result as one line signed with HMAC-SHA256 under the key in
   ``CONFIG``, which exists only in this cell's source.
"""


def grade(CONFIG, USER_NS):  # noqa: C901 - one pass, in order, on purpose
    import sys
    import threading

    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)
    threading.setprofile(None)

    import os
    import signal
    import time

    flags = []

    # -- 1. a clean import system and fresh modules for signing --------------
    from importlib import machinery, util

    standard = (machinery.BuiltinImporter, machinery.FrozenImporter, machinery.PathFinder)
    removed = [f for f in sys.meta_path if f not in standard and not str(getattr(f, "__module__", "")).startswith(
        ("__editable__", "_distutils_hack"))]
    if removed:
        flags.append("import hooks removed: " + ", ".join(sorted({getattr(f, "__name__", type(f).__name__)
                                                                  for f in removed}))[:200])
    sys.meta_path[:] = [f for f in sys.meta_path if f not in removed]
    sys.path_hooks[:] = [h for h in sys.path_hooks
                         if str(getattr(h, "__module__", "")).startswith(("zipimport", "_frozen_importlib"))
                         or "FileFinder" in getattr(h, "__qualname__", "")]
    sys.path_importer_cache.clear()
    for name in ("hmac", "hashlib", "json", "json.encoder", "json.decoder", "json.scanner", "base64"):
        sys.modules.pop(name, None)
    import base64
    import hashlib
    import hmac
    import json

    stdlib = os.path.dirname(os.path.abspath(threading.__file__))
    for mod in (base64, hashlib, hmac, json):
        if not os.path.abspath(getattr(mod, "__file__", "") or "").startswith(stdlib):
            flags.append(f"{mod.__name__} is not the standard library's")

    key = bytes.fromhex(CONFIG["key"])
    stream = sys.stdout
    if type(stream).__module__ != "ipykernel.iostream":  # e.g. sent to os.devnull and never put back
        flags.append("sys.stdout was replaced")
        try:
            shell = sys.modules["IPython"].get_ipython()
            saved = shell._icdl_grader_stdout  # kept by the grader's set-up cell
            if type(saved).__module__ == "ipykernel.iostream":
                saved.set_parent(shell.parent_header)
                stream = saved
        except Exception:
            pass
    write, flush = stream.write, stream.flush
    seq = [0]

    def emit(kind, **data):
        seq[0] += 1
        payload = json.dumps({"nonce": CONFIG["nonce"], "seq": seq[0], "kind": kind, **data}, sort_keys=True)
        body = base64.b64encode(payload.encode("utf-8")).decode("ascii")
        mac = hmac.new(key, f"{seq[0]}:{body}".encode("ascii"), hashlib.sha256).hexdigest()
        write(f"ICDL-GRADE {seq[0]} {body} {mac}\n")
        flush()

    # -- 2. nothing else may be running the notebook's code ------------------
    scratch = tuple(os.path.abspath(p) + os.sep for p in CONFIG["scratch"])

    def notebook_code(filename):
        return (filename.startswith("<") and not filename.startswith("<frozen")) or \
            os.path.abspath(filename).startswith(scratch)

    def busy_threads():
        busy = []
        me = threading.get_ident()
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            while frame is not None and ident != me:
                if notebook_code(frame.f_code.co_filename):
                    busy.append(names.get(ident, str(ident)))
                    break
                frame = frame.f_back
        return busy

    def readable():
        try:
            import ctypes

            return ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 1  # PR_GET_DUMPABLE
        except Exception:
            return False

    def refuse():
        threads = busy_threads()
        if threads:
            emit("void", reason="a thread started by the notebook was still running its code while it was graded "
                                f"({', '.join(threads)[:200]}); end every thread before the notebook finishes")
            return True
        if CONFIG.get("hidden_memory") and readable():
            emit("void", reason="the notebook made the kernel's memory readable to other processes")
            return True
        return False

    emit("start", flags=flags)
    if refuse():
        return

    # -- 3. what the notebook asked for, then forget its icdl -----------------
    stub = sys.modules.get("icdl.checks." + CONFIG["module"])
    usage = {}
    for q in CONFIG["questions"]:
        shown = getattr(getattr(stub, q["name"], None), "_hints_shown", None) if stub is not None else None
        asked = getattr(getattr(stub, q["name"], None), "_solutions_asked", None) if stub is not None else None
        try:
            hints = len({int(n) for n in shown}) if shown is not None else 0
            solutions = int(asked) if asked is not None else 0
        except Exception:
            hints, solutions = 0, 0
        usage[q["name"]] = (hints, solutions)
    for name in [m for m in sys.modules if m == "icdl" or m.startswith("icdl.")]:
        del sys.modules[name]

    # -- 4. a fresh icdl: checks from CONFIG, the rest verified ---------------
    package_root = CONFIG["package"]
    sources, manifest = CONFIG["checks"], CONFIG["manifest"]

    verified = {}
    for rel, digest in manifest.items():  # every file read once, checked, and served from memory
        try:
            with open(os.path.join(package_root, rel), "rb") as f:
                data = f.read()
        except OSError:
            emit("void", reason=f"the course package was modified: {rel} was removed")
            return
        if hashlib.sha256(data).hexdigest() != digest:
            emit("void", reason=f"the course package was modified: {rel} was changed")
            return
        verified[rel] = data

    class Loader:
        def __init__(self, rel, source):
            self.rel, self.source = rel, source

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.__file__ = os.path.join(package_root, self.rel)
            exec(compile(self.source, module.__file__, "exec"), module.__dict__)

    class Finder:
        @staticmethod
        def find_spec(fullname, path=None, target=None):
            if fullname != "icdl" and not fullname.startswith("icdl."):
                return None
            base = fullname.replace(".", "/")
            for rel, package in ((base + "/__init__.py", True), (base + ".py", False)):
                if rel in sources:
                    source = sources[rel]
                elif rel in verified and not rel.startswith("icdl/checks/"):
                    source = verified[rel]
                else:
                    continue
                spec = util.spec_from_loader(fullname, Loader(rel, source), is_package=package,
                                             origin=os.path.join(package_root, rel))
                if package:
                    spec.submodule_search_locations = [os.path.join(package_root, base)]
                return spec
            return None

    sys.meta_path.insert(0, Finder)
    os.environ["COURSE_BUDGET"] = CONFIG["budget"]
    for name in ("COURSE_CHECK_LOG", "COURSE_STRICT_CHECKS"):
        os.environ.pop(name, None)
    try:
        import importlib

        checks = importlib.import_module("icdl.checks." + CONFIG["module"])
    except BaseException as exc:  # a course bug, not the learner's
        emit("fatal", reason=f"the checks could not be imported: {type(exc).__name__}: {str(exc)[:300]}")
        return
    table = getattr(checks, "QUESTIONS", None)
    if not isinstance(table, dict):
        emit("fatal", reason="the checks module has no QUESTIONS table")
        return

    # -- 5. each question on the notebook's variables, by name ----------------
    class CheckTimeout(BaseException):
        pass

    def on_alarm(signum, frame):
        raise CheckTimeout()

    limit = float(CONFIG["check_timeout"])
    unset = object()
    for q in CONFIG["questions"]:
        name = q["name"]
        hints, solutions = usage[name]
        base = {"question": name, "hints": hints, "solutions": solutions}
        names = q["answers"]
        if not names:
            emit("result", outcome="uncheckable", message=f"The grader does not know which variable answers {name}.",
                 **base)
            continue
        answers = [USER_NS.get(n, unset) for n in names]
        if all(a is unset for a in answers):
            listed = ", ".join(f"`{n}`" for n in names)
            emit("result", outcome="missing", message=f"{listed} is not defined once the notebook has run "
                                                      "(its cell was deleted, or failed before defining it).", **base)
            continue
        answers = [None if a is unset else a for a in answers]
        question = table.get(name)
        if question is None:
            emit("result", outcome="uncheckable", message=f"The checks define no question {name}.", **base)
            continue
        emit("begin", question=name)
        alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
        if alarm:
            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        started = time.monotonic()
        try:
            if q.get("rebuild"):
                import torch

                model = answers[0]
                state = model.state_dict() if hasattr(model, "state_dict") else None
                if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                          for k, v in state.items()):
                    outcome, message, extra = "incorrect", (f"`{names[0]}` should be the trained model "
                                                            "(an nn.Module with a state_dict)."), {}
                else:
                    path = os.path.join(CONFIG["state_dir"], f"{name}.pt")
                    torch.save({k: v.detach().to("cpu").clone() for k, v in state.items()}, path)
                    with open(path, "rb") as f:
                        digest = hashlib.sha256(f.read()).hexdigest()
                    outcome, message, extra = "pending", "scored by the grader in a clean process", {"sha256": digest}
            else:
                result = question.evaluate(*answers)
                outcome = str(getattr(getattr(result, "outcome", None), "value", getattr(result, "outcome", "")))
                message, extra = str(getattr(result, "message", "")), {}
        except CheckTimeout:
            outcome, extra = "incorrect", {}
            message = (f"The check of {name} ran over the grader's limit of {limit:g} s: the answer is too slow, "
                       "or never returns.")
        except KeyboardInterrupt:
            outcome, extra = "incorrect", {}
            message = f"The check of {name} was interrupted by the grader's time limit."
        except BaseException as exc:  # SystemExit and friends from the learner's code
            outcome, extra = "incorrect", {}
            message = f"Your code raised {type(exc).__name__} while {name} was checked: {str(exc)[:300]}"
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        emit("result", outcome=outcome, message=message[:4000], seconds=round(time.monotonic() - started, 2),
             **base, **extra)

    # -- 6. done, unless something was reading along --------------------------
    if refuse():
        return
    emit("done", count=len(CONFIG["questions"]), flags=flags)
