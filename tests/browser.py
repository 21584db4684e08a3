"""Headless Chromium driven over the DevTools protocol, for tests/test_book.py.

The built HTML is served by a local ``http.server`` thread on 127.0.0.1 (as a
reader's web host serves it: ``file://`` pages run under different rules for
fetches, storage and same-origin checks, so they would not test what readers
get). Chromium is Debian's ``chromium`` package, started with ``--headless
--no-sandbox --disable-gpu``, a fresh profile and ``--remote-debugging-port=0``;
the port is read from ``DevToolsActivePort`` and the protocol spoken over a
websocket with tornado's client (tornado is already a Jupyter dependency, pinned
in requirements-ci.txt).

The external-request rule: every request the page makes to a host other than
the local server (MathJax, require.js and the widget manager from CDNs, the
Colab badge image, ...) is intercepted with the ``Fetch`` domain and failed as
``BlockedByClient``, online or offline alike, so results never depend on the
network. Those URLs, and the console's "Failed to load resource" lines about
them, are recorded as *external* and reported, never failed on. Everything else
is a page error and fails: an uncaught exception (``Runtime.exceptionThrown``),
a ``console.error``/``console.assert`` call, a console error entry
(``Log.entryAdded``, e.g. a local 404) and a local response with status >= 400.
An exception whose stack lies only in external scripts cannot happen (they are
never fetched); one raised by local code because an external script is missing
still fails, since a reader on a slow or blocked network would meet it too.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_PACKAGE = "chromium"  # Debian's package; it installs /usr/bin/chromium
LOCAL_HOST = "127.0.0.1"


def find_chromium() -> str | None:
    """``$COURSE_CHROMIUM``, else ``chromium`` on PATH, else None."""
    given = os.environ.get("COURSE_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("about", "data", "blob", "javascript") or (
        parts.scheme in ("http", "https", "ws") and parts.hostname == LOCAL_HOST)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


class StaticServer:
    """``python -m http.server`` for one folder, on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.httpd = ThreadingHTTPServer((LOCAL_HOST, 0), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{LOCAL_HOST}:{self.httpd.server_port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, relpath: str) -> str:
        return self.base + relpath

    def file_of(self, url: str) -> Path | None:
        """The file a local URL serves (``dir/`` means ``dir/index.html``); None for other hosts."""
        parts = urlsplit(url)
        if not url.startswith(self.base):
            return None
        path = self.root / unquote(parts.path).lstrip("/")
        return path / "index.html" if unquote(parts.path).endswith("/") or path.is_dir() else path


@dataclass
class Visit:
    """What one page load showed: page errors, blocked external requests, and the DOM facts collected."""

    url: str
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    seconds: float = 0.0


# Runs in the page after it loaded; returns plain JSON.
COLLECT_JS = r"""
(() => {
  const box = el => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
  const shown = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const links = sel => [...document.querySelectorAll(sel)].filter(a => a.hasAttribute('href'))
    .map(a => ({href: a.href, raw: a.getAttribute('href'), text: a.textContent.trim().slice(0, 80),
                cls: a.className, title: a.title || '', target: a.target || '', shown: shown(a)}));
  return {
    title: document.title,
    location: location.href,
    images: [...document.images].map(img => ({
      src: img.currentSrc || img.src, raw: img.getAttribute('src'), alt: img.alt,
      complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
      inFigure: !!img.closest('figure, .figure, .cell_output, .output'),
      inArticle: !!img.closest('article, main')})),
    figures: [...document.querySelectorAll('figure, div.figure')].map(f => ({
      id: f.id, images: f.querySelectorAll('img, svg, object').length})),
    prevNext: links('.prev-next-area a'),
    sidebar: links('nav.bd-docs-nav a, .bd-sidebar-primary a.navbar-brand'),
    local: links('a').filter(a => a.href.startsWith(location.origin)),
    colab: links('a').filter(a => /^https?:\/\/colab\.research\.google\.com\//.test(a.href)),
    launchToggle: (t => t && {shown: shown(t), box: box(t)})(
      document.querySelector('.dropdown-launch-buttons > button.dropdown-toggle')),
    outputs: [...document.querySelectorAll('div.cell_output pre')].map(p => ({
      height: p.clientHeight, content: p.scrollHeight, lines: p.textContent.split('\n').length,
      overflowY: getComputedStyle(p).overflowY})),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    sidebarShown: (s => !!s && shown(s) && s.getBoundingClientRect().right > 0)(
      document.querySelector('.bd-sidebar-primary')),
  };
})()
"""

LAUNCH_JS = r"""
(() => { const a = document.querySelector('.dropdown-launch-buttons a[href*="colab.research.google.com"]');
  if (!a) return null;
  const r = a.getBoundingClientRect(), s = getComputedStyle(a);
  const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
  return {href: a.href, target: a.target, shown: r.width > 0 && r.height > 0 && s.visibility !== 'hidden',
          reachable: !!hit && (hit === a || a.contains(hit))}; })()
"""


class Chromium:
    """One headless Chromium with one tab, synchronous methods; use as a context manager."""

    def __init__(self, executable: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="icdl-chromium-"))
        self.log = open(self.profile.parent / f"{self.profile.name}.log", "wb")
        self.proc = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "--remote-allow-origins=*", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
             "--hide-scrollbars", "--window-size=1280,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.loop = asyncio.new_event_loop()
        self.next_id, self.pending, self.listeners = 0, {}, []
        self.session = None
        try:
            self._run(self._connect())
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------
    def _run(self, coro, timeout: float | None = None):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout or self.timeout))

    def _log_tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    async def _connect(self):
        from tornado.websocket import websocket_connect

        port_file, deadline = self.profile / "DevToolsActivePort", time.monotonic() + self.timeout
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.proc.returncode}):\n{self._log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"chromium wrote no DevToolsActivePort in {self.timeout:.0f} s:\n{self._log_tail()}")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws = await websocket_connect(f"ws://{LOCAL_HOST}:{port}{path}", max_message_size=256 * 2**20)
        self.reader = self.loop.create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, browser=True)
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                                   browser=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.send(f"{domain}.enable")
        await self.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self.listeners.append(self._gatekeeper)

    async def _read(self):
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                for future in self.pending.values():
                    if not future.done():
                        future.set_exception(RuntimeError("chromium closed the DevTools connection"))
                return
            message = json.loads(raw)
            if "id" in message:
                future = self.pending.pop(message["id"], None)
                if future and not future.done():
                    if "error" in message:
                        future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
                    else:
                        future.set_result(message.get("result", {}))
            else:
                for listener in list(self.listeners):
                    listener(message["method"], message.get("params", {}))

    async def send(self, method: str, params: dict | None = None, browser: bool = False):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if not browser:
            message["sessionId"] = self.session
        future = self.loop.create_future()
        self.pending[self.next_id] = future
        await self.ws.write_message(json.dumps(message))
        return await future

    def _gatekeeper(self, method, params):
        """Let local requests through; fail every other one (recorded by the visit's listener)."""
        if method == "Fetch.requestPaused":
            if is_local(params["request"]["url"]):
                self.loop.create_task(self.send("Fetch.continueRequest", {"requestId": params["requestId"]}))
            else:
                self.loop.create_task(self.send("Fetch.failRequest",
                                                {"requestId": params["requestId"], "errorReason": "BlockedByClient"}))

    # -- what the tests call ----------------------------------------------------------------------
    def visit(self, url: str, width: int = 1280, height: int = 900, mobile: bool = False,
              quiet: float = 0.25, open_launch_menu: bool = False, fresh: bool = True) -> Visit:
        """Load ``url`` in a ``width`` x ``height`` viewport and report what happened.

        ``fresh``: clear the origin's localStorage first, so that every page is met as a first visit.
        ``open_launch_menu``: click the launch-buttons menu and record the Colab entry it shows.
        """
        return self._run(self._visit(url, width, height, mobile, quiet, open_launch_menu, fresh))

    async def _visit(self, url, width, height, mobile, quiet, open_launch_menu, fresh) -> Visit:
        start = time.monotonic()
        visit, loaded, inflight = Visit(url), asyncio.Event(), {}
        last_activity = [time.monotonic()]

        def listen(method, params):
            if method == "Page.loadEventFired":
                loaded.set()
            elif method == "Network.requestWillBeSent":
                inflight[params["requestId"]] = params["request"]["url"]
                last_activity[0] = time.monotonic()
            elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                inflight.pop(params["requestId"], None)
                last_activity[0] = time.monotonic()
            elif method == "Fetch.requestPaused" and not is_local(params["request"]["url"]):
                visit.external.append(params["request"]["url"])
            elif method == "Network.responseReceived":
                response = params["response"]
                # The browser asks for /favicon.ico by itself when a page names no icon: not the page's request.
                if (response["status"] >= 400 and is_local(response["url"])
                        and urlsplit(response["url"]).path != "/favicon.ico"):
                    visit.errors.append(f"HTTP {response['status']} for {response['url']}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                what = (details.get("exception") or {}).get("description") or details.get("text", "")
                where = f"{details.get('url', '')}:{details.get('lineNumber', 0) + 1}"
                visit.errors.append(f"uncaught exception: {what.splitlines()[0] if what else '?'} ({where})")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
                visit.errors.append(f"console.{params['type']}: {text}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                if entry.get("url") and not is_local(entry["url"]):
                    return  # about a blocked external request: already in visit.external
                if entry.get("source") == "network" and "status of" in entry["text"]:
                    return  # a local HTTP error: reported once, from Network.responseReceived
                visit.errors.append(f"console {entry.get('source', '')} error: {entry['text']} {entry.get('url', '')}".strip())

        await self.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        await self.send("Emulation.setTouchEmulationEnabled", {"enabled": mobile})
        self.listeners.append(listen)
        try:
            if fresh:  # a first-time reader: nothing left in localStorage by the pages visited before
                origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
                await self.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "local_storage"})
            navigated = await self.send("Page.navigate", {"url": url})
            if navigated.get("errorText"):
                visit.errors.append(f"navigation failed: {navigated['errorText']}")
                return visit
            await loaded.wait()
            # Let scripts that run after the load event (deferred fetches, timers) finish: wait until no
            # request has been in flight for `quiet` seconds (at most 10 s).
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (inflight or time.monotonic() - last_activity[0] < quiet):
                await asyncio.sleep(0.05)
            result = await self.send("Runtime.evaluate", {"expression": COLLECT_JS, "returnByValue": True})
            visit.facts = result["result"].get("value") or {}
            if open_launch_menu and (visit.facts.get("launchToggle") or {}).get("shown"):
                x, y, w, h = visit.facts["launchToggle"]["box"]
                await self.click(x + w / 2, y + h / 2)
                await asyncio.sleep(0.2)
                launch = await self.send("Runtime.evaluate", {"expression": LAUNCH_JS, "returnByValue": True})
                visit.facts["launchAfterClick"] = launch["result"].get("value")
        finally:
            self.listeners.remove(listen)
            visit.seconds = time.monotonic() - start
        return visit

    async def click(self, x: float, y: float):
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent",
                            {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" else "none",
                             "clickCount": 1 if kind != "mouseMoved" else 0})

    def screenshot(self) -> bytes:
        """A PNG of the current viewport."""
        result = self._run(self.send("Page.captureScreenshot", {"format": "png", "fromSurface": True}))
        return base64.b64decode(result["data"])

    def close(self):
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
            if getattr(self, "reader", None) is not None:
                self.reader.cancel()
                self.loop.run_until_complete(asyncio.gather(self.reader, return_exceptions=True))
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self.loop.close()
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError if it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
