"""The course website, built from the executed notebooks and read in a real browser.

The site is built (as `make site` does, without executing anything) from the executed copies that
tests/test_notebooks.py wrote to workspace/executed/ (run it first: `make test` orders it so), served by
a static server on 127.0.0.1 and opened in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright; no browser is downloaded). Every page must load with no console error and no request to
another host; every figure a notebook drew (its image/png outputs) must be an <img> on its page that
decoded; every internal link must resolve; search must find a lesson.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

from mlops_course.classroom.site import build_site, collect_pages

pytestmark = [pytest.mark.slow, pytest.mark.deploy]

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = Path(os.environ.get("MLOPS_COURSE_EXECUTED_DIR", ROOT / "workspace" / "executed"))
CHROMIUM = os.environ.get("MLOPS_COURSE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    "The website built from the executed notebooks, in a temporary folder."
    return build_site(ROOT, EXECUTED, tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def server(built):
    "A static server for the built site on 127.0.0.1 (a free port), stopped afterwards."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=built.site))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    "One headless Chromium for every page."
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _expected_figures() -> dict[str, int]:
    "Page URL (relative to the site) -> number of image/png outputs of its notebook."
    out = {}
    for p in collect_pages(ROOT, EXECUTED):
        if p.dest.endswith(".ipynb"):
            nb = json.loads(p.src.read_text())
            tagged = lambda c: "injected-parameters" in c.get("metadata", {}).get("tags", [])  # noqa: E731
            out[p.dest.removesuffix(".ipynb") + ".html"] = sum(
                "image/png" in o.get("data", {}) for c in nb["cells"] if not tagged(c) for o in c.get("outputs", []))
    return out


_PAGE_FACTS = """() => ({
  images: Array.from(document.querySelectorAll('img')).map(i => ({
      png: i.src.startsWith('data:image/png'), ok: i.complete && i.naturalWidth > 0, src: i.src.slice(0, 60)})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
})"""


@pytest.fixture(scope="module")
def visited(built, server, browser):
    "Every HTML page of the site, opened once: its errors, images, links and element ids."
    pages = sorted(str(p.relative_to(built.site)) for p in built.site.rglob("*.html") if p.name != "404.html")
    ctx = browser.new_context()
    foreign: list[str] = []

    def route(r):
        if urlparse(r.request.url).hostname == "127.0.0.1" or r.request.url.startswith("data:"):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()
    ctx.route("**/*", route)
    page = ctx.new_page()
    log: list[str] = []  # every problem of every page, in order; a page's share starts where the log was
    page.on("console", lambda m: m.type == "error" and log.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: log.append(f"page error: {e}"))
    page.on("response", lambda r: r.status >= 400 and log.append(f"HTTP {r.status}: {r.url}"))
    facts, t0 = {}, time.monotonic()
    for rel in pages:
        start, before = len(log), len(foreign)
        page.goto(server + rel, wait_until="load")  # figures are data: URIs, decoded by "load"
        facts[rel] = {**page.evaluate(_PAGE_FACTS),
                      "errors": log[start:] + [f"request to another host: {u}" for u in foreign[before:]]}
    ctx.close()
    print(f"\nsite check: {len(pages)} pages in {time.monotonic() - t0:.1f} s; built in {built.seconds} s, "
          f"{built.figures} figures")
    return facts


def test_every_notebook_is_a_page(built):
    pages = collect_pages(ROOT, EXECUTED)
    missing = [p.dest for p in pages if not (built.site / p.dest.replace(".ipynb", ".html").replace(".md", ".html")).is_file()]
    assert not missing, f"pages not built: {missing}"
    assert built.pages == len(pages) and built.pages >= 20


def test_every_page_loads_without_errors(visited):
    bad = {rel: f["errors"] for rel, f in visited.items() if f["errors"]}
    assert not bad, "pages with errors:\n" + "\n".join(f"{rel}: {e[:3]}" for rel, e in bad.items())


def test_every_figure_is_a_decoded_image_on_its_page(visited):
    expected = _expected_figures()
    assert sum(expected.values()) > 0, "no notebook drew a figure: the executed copies are not executed"
    wrong = {}
    for rel, n in expected.items():
        imgs = visited[rel]["images"]
        broken = [i["src"] for i in imgs if not i["ok"]]
        shown = sum(i["png"] and i["ok"] for i in imgs)
        if broken or shown < n:
            wrong[rel] = f"{shown} of {n} figures shown, broken images: {broken[:3]}"
    assert not wrong, "figures missing:\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


def test_internal_links_resolve(visited, server):
    targets: dict[str, set[str]] = {}
    for rel, f in visited.items():
        for href in f["links"]:
            if href.startswith(server):
                targets.setdefault(href, set()).add(rel)
    broken = []
    for href, where in sorted(targets.items()):
        url, fragment = urldefrag(href)
        rel = url.removeprefix(server) or "index.html"
        if rel in visited:
            if fragment and fragment not in visited[rel]["ids"]:
                broken.append(f"{href} (no element with id '{fragment}') from {sorted(where)[:2]}")
            continue
        try:
            urllib.request.urlopen(url, timeout=10).close()
        except urllib.error.HTTPError as e:
            broken.append(f"{href}: HTTP {e.code} from {sorted(where)[:2]}")
    assert len(targets) > 50
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:20])


def test_search_finds_a_lesson(server, browser):
    page = browser.new_page()
    page.goto(server + "index.html")
    page.fill("input.md-search__input", "Airflow")
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    hrefs = page.eval_on_selector_all(".md-search-result__item a", "els => els.map(e => e.href)")
    page.close()
    assert any("week07_orchestration.html" in h for h in hrefs), hrefs[:5]


def test_formulas_are_mathml_not_tex(built):
    html = (built.site / "notebooks" / "week02_ml_fundamentals.html").read_text()
    assert "<math" in html and "\\sqrt{" not in html  # the RMSE formula, drawn, not shown as TeX
