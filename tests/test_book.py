"""Build the book as a reader gets it: `jupyter-book build -W -n --keep-going`, notebooks executed.

The build runs in a temporary copy of the book's files (the checkout stays
clean), in the smoke budget. It covers the ``_toc.yml`` entries whose files
exist (tests/test_hygiene.py separately fails on entries without a file), and
checks that every page was written and every notebook page has a Colab launch
button and badge. Select it alone with ``-m book``; deselect with ``-m "not book"``.
"""

import copy
import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from icdl.env import repo_root
from icdl.notebooks import colab_url, repo_url

pytestmark = pytest.mark.book
ROOT = repo_root()
BOOK_FILES = ["_config.yml", "_static"]  # plus every file the toc lists


def existing(root: Path, entry: str) -> Path | None:
    return next((root / f"{entry}{ext}" for ext in (".ipynb", ".md") if (root / f"{entry}{ext}").is_file()), None)


def toc_of_existing_files(toc: dict, root: Path) -> tuple[dict, list[str]]:
    """The toc without entries whose file does not exist (yet); also returns the entries left out."""
    toc, left_out = copy.deepcopy(toc), []

    def keep(entries):
        kept = []
        for entry in entries:
            sections = keep(entry.get("sections", []))
            if existing(root, entry["file"]):
                entry.pop("sections", None)
                kept.append({**entry, **({"sections": sections} if sections else {})})
            else:
                left_out.append(entry["file"])
                kept += sections  # an exercise whose chapter is missing still gets built
        return kept

    parts = []
    for part in toc.get("parts", []):
        part["chapters"] = keep(part["chapters"])
        if part["chapters"]:
            parts.append(part)
    toc["parts"] = parts
    return toc, left_out


def toc_entries(toc: dict) -> list[str]:
    found = [toc["root"]]

    def walk(entries):
        for entry in entries:
            found.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part["chapters"])
    return found


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    book = tmp_path_factory.mktemp("book")
    toc, left_out = toc_of_existing_files(yaml.safe_load((ROOT / "_toc.yml").read_text()), ROOT)
    sources = [ROOT / name for name in BOOK_FILES] + [existing(ROOT, entry) for entry in toc_entries(toc)]
    for source in sources:
        target = book / source.relative_to(ROOT)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # The notebooks' set-up cell finds the course package by walking up to utils/icdl, and
    # the training-craft page quotes its source.
    (book / "utils").symlink_to(ROOT / "utils", target_is_directory=True)
    (book / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    if left_out:
        print(f"not built (no file yet): {', '.join(left_out)}")
    env = {**os.environ, "COURSE_BUDGET": os.environ.get("COURSE_BUDGET", "smoke"), "TQDM_DISABLE": "1"}
    env.pop("COURSE_STRICT_CHECKS", None)  # exercises run untouched in the book
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], env=env,
                          capture_output=True, text=True, timeout=1500)
    return book, toc, proc


def test_book_builds_without_warnings(built_book):
    book, _, proc = built_book
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "build succeeded" in log, log[-3000:]


def test_every_toc_page_is_written_with_colab_links(built_book):
    book, toc, proc = built_book
    url = repo_url(ROOT)
    for entry in toc_entries(toc):
        page = book / "_build" / "html" / f"{entry}.html"
        assert page.is_file(), f"{entry}: no page {page.name} was written"
        if existing(ROOT, entry).suffix == ".ipynb":
            html = page.read_text(encoding="utf-8")
            colab = colab_url(url, f"{entry}.ipynb")
            launch = re.search(rf'<a href="{re.escape(colab)}"[^>]*title="Launch on Colab"', html)
            badge = re.search(rf'<a [^>]*href="{re.escape(colab)}"><img alt="Open In Colab"', html)
            assert launch, f"{entry}: no 'Launch on Colab' button opening {colab}"
            assert badge, f"{entry}: no 'Open In Colab' badge linking to {colab}"


# ---- The built book in a real browser ---------------------------------------------------------------
# Headless Chromium (Debian's `chromium`) loads every page from a local HTTP server; tests/browser.py says
# how, and which requests are blocked (every one to another host) and so never fail a test. The checks are
# functions that return a list of problems, so that test_browser_checks_catch_planted_faults can show
# that each one notices a fault planted in a copy of a page.
# COURSE_BUILT_BOOK=path/to/_build/html points these tests at an existing build instead of building
# (for working on them; CI always builds).

DESKTOP, MOBILE = (1280, 900), (390, 844)


def book_pages(toc: dict) -> list[tuple[str, bool]]:
    """(toc entry, is it a notebook) in reading order."""
    return [(entry, existing(ROOT, entry).suffix == ".ipynb") for entry in toc_entries(toc)]


@pytest.fixture(scope="module")
def book_html(request) -> tuple[Path, dict]:
    given = os.environ.get("COURSE_BUILT_BOOK")
    if given:
        toc, _ = toc_of_existing_files(yaml.safe_load((ROOT / "_toc.yml").read_text()), ROOT)
        return Path(given), toc
    book, toc, proc = request.getfixturevalue("built_book")
    html = book / "_build" / "html"
    if not (html / f"{toc['root']}.html").is_file():
        pytest.fail(f"the book build wrote no {toc['root']}.html (exit status {proc.returncode}); "
                    "see test_book_builds_without_warnings")
    return html, toc


@pytest.fixture(scope="module")
def chromium():
    from browser import CHROMIUM_PACKAGE, Chromium, find_chromium

    executable = find_chromium()
    if not executable:
        pytest.skip(f"no headless browser: install Debian's package `{CHROMIUM_PACKAGE}` "
                    f"(apt-get install {CHROMIUM_PACKAGE}; .ci/run does so as root), or set COURSE_CHROMIUM")
    with Chromium(executable) as browser:
        yield browser


@pytest.fixture(scope="module")
def book_in_browser(book_html, chromium):
    """Every toc page loaded once at desktop width (the launch menu clicked open on notebook pages)."""
    from browser import StaticServer

    html, toc = book_html
    with StaticServer(html) as server:
        start = time.monotonic()
        visits = {entry: chromium.visit(server.url(f"{entry}.html"), *DESKTOP, open_launch_menu=notebook)
                  for entry, notebook in book_pages(toc)}
        visits["index"] = chromium.visit(server.url("index.html"))  # the site's root: a redirect
        print(f"browser: {len(visits)} pages in {time.monotonic() - start:.1f} s; "
              f"{external_summary(visits.values())}")
        yield server, toc, visits


def external_summary(visits) -> str:
    hosts = Counter(urlsplit(url).hostname for visit in visits for url in visit.external)
    blocked = ", ".join(f"{host} ({n})" for host, n in hosts.most_common()) or "none"
    return f"requests to other hosts, blocked and not counted as errors: {blocked}"


def js_problems(visits: dict) -> list[str]:
    return [f"{entry}: {error}" for entry, visit in visits.items() for error in visit.errors]


def image_problems(server, visits: dict) -> list[str]:
    """Local images must exist and have decoded; images from other hosts are blocked (not counted)."""
    from browser import is_local

    problems = []
    for entry, visit in visits.items():
        for image in visit.facts.get("images", []):
            if not is_local(image["src"]):
                continue
            where = f"{entry}: image {image['raw']!r}"
            path = server.file_of(image["src"])
            if image["src"].startswith(server.base) and not (path and path.is_file()):
                problems.append(f"{where}: no file {path.relative_to(server.root) if path else image['src']}")
            elif not image["complete"] or not image["width"] or not image["height"]:
                problems.append(f"{where}: did not load ({image['width']}x{image['height']} px)")
        problems += [f"{entry}: figure {figure['id'] or '(no id)'} shows no image"
                     for figure in visit.facts.get("figures", []) if not figure["images"]]
    return problems


def nav_problems(server, toc: dict, visits: dict) -> list[str]:
    """Every local link leads to a page (and anchor) that exists; the sidebar lists every page; prev/next
    walk the table of contents in order; the site's root sends readers to the first page."""
    problems, ids = [], {}
    order = [server.url(f"{entry}.html") for entry, _ in book_pages(toc)]

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            ids[path] = set(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8", errors="replace")))
        return ids[path]

    for entry, visit in visits.items():
        if entry == "index":
            if visit.facts.get("location") != order[0]:
                problems.append(f"index.html: the site's root opens {visit.facts.get('location')}, not {order[0]}")
            continue
        facts = visit.facts
        for link in facts.get("local", []):
            target, _, fragment = link["href"].partition("#")
            path = server.file_of(target)
            if not path or not path.is_file():
                problems.append(f"{entry}: link {link['raw']!r} ({link['text']!r}) leads to no page")
            elif fragment and path.suffix == ".html" and unquote(fragment) not in anchors(path):
                problems.append(f"{entry}: link {link['raw']!r} ({link['text']!r}) names no anchor #{fragment}")
        sidebar = {link["href"].partition("#")[0] for link in facts.get("sidebar", [])}
        missing = [url.removeprefix(server.base) for url in order if url not in sidebar]
        if missing:
            problems.append(f"{entry}: the sidebar does not list {', '.join(missing)}")
        i = order.index(server.url(f"{entry}.html"))
        for side, want in (("left-prev", order[i - 1] if i else None),
                           ("right-next", order[i + 1] if i + 1 < len(order) else None)):
            got = [link["href"] for link in facts.get("prevNext", []) if side in link["cls"].split()]
            if got != ([want] if want else []):
                problems.append(f"{entry}: the {side.split('-')[1]} link goes to "
                                f"{[url.removeprefix(server.base) for url in got] or 'nowhere'}, "
                                f"not {want.removeprefix(server.base) if want else 'nowhere'}")
            elif want and not [link for link in facts["prevNext"] if side in link["cls"] and link["shown"]]:
                problems.append(f"{entry}: the {side.split('-')[1]} link is not visible")
    return problems


def colab_problems(toc: dict, visits: dict) -> list[str]:
    """What a reader sees of Colab: on a notebook page the badge is visible and the launch menu, once
    clicked open, shows a reachable entry, both opening this notebook; other pages offer no launch
    button; every Colab link anywhere opens a notebook the repository has."""
    problems, url = [], repo_url(ROOT)
    prefix = colab_url(url, "")
    for entry, notebook in book_pages(toc):
        if entry not in visits:
            continue
        facts, want = visits[entry].facts, colab_url(url, f"{entry}.ipynb")
        for link in facts.get("colab", []):
            relpath = link["href"].removeprefix(prefix) if link["href"].startswith(prefix) else None
            if relpath is None or not relpath.endswith(".ipynb") or not (ROOT / relpath).is_file():
                problems.append(f"{entry}: Colab link {link['href']} opens no notebook of this repository")
        if not notebook:
            if facts.get("launchToggle"):
                problems.append(f"{entry}: a launch-buttons menu on a page that is not a notebook")
            continue
        badges = [link for link in facts.get("colab", []) if link["href"] == want and link["shown"]
                  and "dropdown-item" not in link["cls"]]
        if not badges:
            problems.append(f"{entry}: no visible 'Open In Colab' badge opening {want}")
        launch = facts.get("launchAfterClick")
        if not (facts.get("launchToggle") or {}).get("shown"):
            problems.append(f"{entry}: no visible launch-buttons menu")
        elif not launch:
            problems.append(f"{entry}: the launch menu has no Colab entry")
        else:
            if launch["href"] != want:
                problems.append(f"{entry}: the launch menu's Colab entry opens {launch['href']}, not {want}")
            if not (launch["shown"] and launch["reachable"]):
                problems.append(f"{entry}: the launch menu's Colab entry is not visible once the menu is opened")
    return problems


def test_every_page_loads_without_javascript_errors(book_in_browser):
    _, _, visits = book_in_browser
    problems = js_problems(visits)
    assert not problems, "\n".join(problems + ["", external_summary(visits.values())])


def test_every_image_is_present(book_in_browser):
    server, _, visits = book_in_browser
    problems = image_problems(server, visits)
    assert not problems, "\n".join(problems + ["", external_summary(visits.values())])
    # Every chapter draws figures: a chapter page without one lost its plots (e.g. to a kernel without
    # inline figures), which the check above cannot see.
    without = [entry for entry, visit in visits.items() if entry.startswith("chapters/")
               and not any("/_images/" in image["src"] for image in visit.facts.get("images", []))]
    assert not without, f"chapter pages that show no figure: {', '.join(without)}"


def test_long_outputs_scroll_inside_their_cell(book_in_browser):
    """A printed output is at most about 32 lines tall on the page; a longer one scrolls in its cell."""
    _, _, visits = book_in_browser
    outputs = [(entry, out) for entry, visit in visits.items() for out in visit.facts.get("outputs", [])]
    assert outputs, "no page has a printed output"
    too_tall = [f"{entry}: {out['height']} px" for entry, out in outputs if out["height"] > 700]
    assert not too_tall, "outputs taller than 700 px on the page:\n" + "\n".join(too_tall)
    long = [(entry, out) for entry, out in outputs if out["lines"] > 45]
    assert long, "no output is long enough to show the scrolling (the smoke build prints a layer table)"
    unscrolled = [f"{entry}: {out['lines']} lines" for entry, out in long
                  if not (out["content"] > out["height"] and out["overflowY"] in ("auto", "scroll"))]
    assert not unscrolled, "long outputs that do not scroll:\n" + "\n".join(unscrolled)


def test_navigation_links_resolve(book_in_browser):
    server, toc, visits = book_in_browser
    problems = nav_problems(server, toc, visits)
    assert not problems, "\n".join(problems)


def test_colab_links_as_the_browser_shows_them(book_in_browser):
    _, toc, visits = book_in_browser
    problems = colab_problems(toc, visits)
    assert not problems, "\n".join(problems)


def test_screenshots_of_a_chapter_at_desktop_and_mobile_width(book_html, chromium):
    """Saved into the build folder (``_build/screenshots/``) and ``$COURSE_SCREENSHOT_DIR`` if set."""
    from PIL import Image, ImageStat

    from browser import StaticServer, png_size

    html, toc = book_html
    entry = next(entry for entry, notebook in book_pages(toc) if notebook and entry.startswith("chapters/"))
    folders = [html.parent / "screenshots"] + [Path(d) for d in [os.environ.get("COURSE_SCREENSHOT_DIR")] if d]
    with StaticServer(html) as server:
        for name, (width, height), mobile in (("desktop", DESKTOP, False), ("mobile", MOBILE, True)):
            visit = chromium.visit(server.url(f"{entry}.html"), width, height, mobile=mobile)
            png = chromium.screenshot()
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{entry.replace('/', '-')}-{name}-{width}x{height}.png").write_bytes(png)
            where = f"{entry} at {name} width"  # (its JavaScript errors are test_every_page_loads_...'s)
            assert png_size(png) == (width, height), f"{where}: the screenshot is {png_size(png)}"
            with Image.open(io.BytesIO(png)) as image:
                grey = image.convert("L")
                colours = len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16))
                assert ImageStat.Stat(grey).stddev[0] > 10 and colours > 16, f"{where}: the screenshot is blank"
            facts = visit.facts
            assert facts["scrollWidth"] <= width, (
                f"{where}: the page is {facts['scrollWidth']} px wide, wider than the {width} px window")
            assert facts["sidebarShown"] is (not mobile), (
                f"{where}: the table-of-contents sidebar is {'shown' if facts['sidebarShown'] else 'hidden'}")


def plant(page: Path, pattern: str, replacement: str) -> None:
    html = page.read_text(encoding="utf-8")
    planted, n = re.subn(pattern, replacement, html, count=1)
    assert n == 1, f"nothing to plant the fault into in {page}: {pattern!r} not found"
    page.write_text(planted, encoding="utf-8")


def test_browser_checks_catch_planted_faults(book_in_browser, chromium, tmp_path):
    """Each check finds a fault planted in a copy of the built book: a broken image, a script that throws,
    a dead 'next' link and a Colab badge that opens another notebook (one fault per page)."""
    from browser import StaticServer

    server, toc, _ = book_in_browser
    copy = tmp_path / "html"
    shutil.copytree(server.root, copy, ignore=shutil.ignore_patterns("*.ipynb", "_sources"))
    notebooks = [entry for entry, notebook in book_pages(toc) if notebook]
    with_image = next((e for e in notebooks if 'src="../_images/' in (copy / f"{e}.html").read_text(encoding="utf-8")),
                      None)
    assert with_image, "no notebook page shows a figure (src=\"../_images/...\"): nothing to plant a broken image in"
    throws, dead_next, wrong_colab = [e for e in notebooks if e != with_image][:3]
    plant(copy / f"{with_image}.html", r'src="\.\./_images/', 'src="../_images/planted-missing-')
    plant(copy / f"{throws}.html", r"</body>", '<script>throw new Error("planted fault")</script></body>')
    plant(copy / f"{dead_next}.html", r'(<a class="right-next"\s+href=")[^"]*"', r'\1planted-missing.html"')
    badge = re.escape(f'href="{colab_url(repo_url(ROOT), wrong_colab)}.ipynb"><img alt="Open In Colab"')
    plant(copy / f"{wrong_colab}.html", badge,
          f'href="{colab_url(repo_url(ROOT), "chapters/planted-missing.ipynb")}"><img alt="Open In Colab"')
    with StaticServer(copy) as planted:
        visits = {entry: chromium.visit(planted.url(f"{entry}.html"), *DESKTOP, open_launch_menu=True)
                  for entry in (with_image, throws, dead_next, wrong_colab)}
        found = {"js": js_problems(visits), "images": image_problems(planted, visits),
                 "nav": nav_problems(planted, toc, visits), "colab": colab_problems(toc, visits)}
    expected = {"js": f"{throws}: uncaught exception: Error: planted fault",
                "images": f"{with_image}: image '../_images/planted-missing-",
                "nav": f"{dead_next}: link 'planted-missing.html'",
                "colab": f"{wrong_colab}: Colab link {colab_url(repo_url(ROOT), 'chapters/planted-missing.ipynb')}"}
    for check, start in expected.items():
        assert any(problem.startswith(start) for problem in found[check]), (
            f"the {check} check missed a planted fault ({start}...); it found:\n" + "\n".join(found[check]))
