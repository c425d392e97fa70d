"""Open every page of the built course site in headless Chromium and check it.

    .venv/bin/python tools/check_site.py build/site                      # exit 1 on any failure
    .venv/bin/python tools/check_site.py build/site --screenshots /tmp   # also save two screenshots

The site is served on 127.0.0.1 (a free port) and opened with the distribution's Chromium
(``/usr/bin/chromium``, Debian package ``chromium``; set ``CHROMIUM`` to use another binary) driven by
Playwright, in a fresh user-data-dir, with networking features that phone home switched off. For every
``*.html`` page it checks:

* the page loads (HTTP 200) without console errors, uncaught exceptions or failed requests, and makes
  no request outside 127.0.0.1 (the site must work offline: MathJax is served from the site);
* math is rendered: every Sphinx math element (``.math``) holds a MathJax ``mjx-container``, MathJax
  reported no TeX error (``mjx-merror``), no ``<IPython.core.display.Math object>`` text fallback
  is shown in place of a formula, and no TeX source (``$$``, ``\frac``, ``\theta``, ...) is left as
  plain text outside code (a Markdown line starting with ``+`` inside ``$$...$$`` once did that);
* every ``<img>`` has loaded (``complete`` and ``naturalWidth > 0``);
* every internal link resolves: the target file exists in the site and its ``#fragment`` is an id
  in the target page;
* collapsible solutions (``<details>``) start closed, have a ``<summary>``, and open on a click.

Chapters must also show math and at least one figure each (``--min-chapter-figures``), so a site built
from notebooks that lost their figures fails here.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FALLBACK_TEXT = "<IPython.core.display.Math object>"

PAGE_PROBE = """() => {
  const maths = [...document.querySelectorAll('.math')];
  const imgs = [...document.querySelectorAll('img')];
  const details = [...document.querySelectorAll('article details')];  // the theme's menus use <details> too
  const main = document.querySelector('main') || document.body;
  return {
    maths: maths.length,
    unrendered: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    merrors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
    mjx: document.querySelectorAll('mjx-container').length,
    fallback: main.innerText.includes('""" + FALLBACK_TEXT + """'),
    imgs: imgs.length,
    broken_imgs: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 80)),
    figures: [...main.querySelectorAll('div.cell_output img, figure img')].length,
    details: details.length,
    bad_details: details.filter(d => d.open || !d.querySelector(':scope > summary')).length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    raw_tex: (() => {  // TeX left as text: e.g. a "+" starting a line inside $$...$$ made Markdown a list
      const skip = 'pre, code, script, style, mjx-container, .highlight, .math';
      const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
      const hits = [];
      for (let n = walker.nextNode(); n && hits.length < 5; n = walker.nextNode()) {
        if (n.parentElement && n.parentElement.closest(skip)) continue;
        const t = n.textContent;
        if (/\\$\\$|\\\\(frac|tfrac|mathrm|mathcal|mathbb|theta|lambda|sum|lVert|Big)\\b/.test(t)) {
          hits.push(t.trim().slice(0, 80));
        }
      }
      return hits;
    })(),
  };
}"""


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" or (tag == "a" and k == "name"):
                self.ids.add(v)


def page_ids(path: Path) -> set[str]:
    p = _Ids()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p.ids


def link_problems(site: Path, page: Path, hrefs: list[str], ids: dict[Path, set[str]]) -> list[str]:
    """Internal links of ``page`` whose target file or fragment is missing."""
    out = []
    for href in hrefs:
        u = urlparse(href)
        if u.scheme or u.netloc or href.startswith(("mailto:", "javascript:")):
            continue  # external links are not followed (the check runs offline)
        path, frag = urldefrag(href)
        target = (page.parent / unquote(urlparse(path).path)).resolve() if path else page
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(site.resolve()) or not target.exists():
            out.append(f"broken link {href!r}")
            continue
        if frag and target.suffix == ".html":
            if target not in ids:
                ids[target] = page_ids(target)
            if unquote(frag) not in ids[target]:
                out.append(f"link {href!r}: no id {frag!r} in {target.name}")
    return sorted(set(out))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def check_site(site: Path, screenshots: Path | None = None, min_chapter_figures: int = 1,
               chromium: str | None = None, verbose: bool = True, math_timeout_s: float = 30
               ) -> dict[str, list[str]]:
    """Check every page; return ``{page: [problems]}`` for the pages with problems (empty: all good)."""
    from playwright.sync_api import sync_playwright

    site = site.resolve()
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    if not (site / "index.html").exists():
        return {"index.html": [f"no index.html in {site}: build the site first"]}
    chromium = chromium or os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return {"(browser)": [f"{chromium} not found: apt-get install -y chromium (or set CHROMIUM)"]}
    server, base = serve(site)
    ids: dict[Path, set[str]] = {}
    problems: dict[str, list[str]] = {}
    totals = {"pages": 0, "math": 0, "images": 0, "details": 0}
    t0 = time.perf_counter()
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="check-site-") as profile:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                        args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            events: list[str] = []
            page.on("console", lambda m: events.append(f"console {m.type}: {m.text[:200]}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: events.append(f"uncaught exception: {str(e)[:200]}"))
            page.on("requestfailed", lambda r: events.append(f"request failed: {r.url[:120]} ({r.failure})"))

            def local_only(route):  # the site must work offline: anything else is reported and blocked
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    events.append(f"request outside the site: {route.request.url[:120]}")
                    route.abort()

            page.route("**/*", local_only)
            for path in pages:
                rel = path.relative_to(site).as_posix()
                events.clear()
                found: list[str] = []
                resp = page.goto(f"{base}/{rel}", wait_until="load")
                if resp is None or resp.status != 200:
                    found.append(f"HTTP {resp.status if resp else 'no response'}")
                if page.evaluate("() => document.querySelector('.math') !== null"):
                    # MathJax loads deferred and typesets asynchronously: wait for it to finish
                    try:
                        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                               timeout=math_timeout_s * 1000)
                        page.evaluate("() => MathJax.startup.promise.then(() => true)")
                    except Exception as e:  # noqa: BLE001 - reported as a problem of this page
                        found.append(f"MathJax did not start: {str(e).splitlines()[0]}")
                info = page.evaluate(PAGE_PROBE)
                found += [f"math not rendered: {t!r}" for t in info["unrendered"][:5]]
                found += [f"TeX error: {t!r}" for t in info["merrors"][:5]]
                found += [f"raw TeX shown as text: {t!r}" for t in info["raw_tex"]]
                if info["fallback"]:
                    found.append(f"shows the text fallback {FALLBACK_TEXT} instead of the formula")
                found += [f"image not loaded: {s}" for s in info["broken_imgs"]]
                if info["bad_details"]:
                    found.append(f"{info['bad_details']} <details> open by default or without <summary>")
                if info["details"]:
                    page.locator("article details > summary").first.click()
                    if not page.evaluate("() => document.querySelector('article details').open"):
                        found.append("<details> did not open on a click")
                if rel.startswith("chapters/"):
                    if info["mjx"] == 0:
                        found.append("chapter without rendered math")
                    if info["figures"] < min_chapter_figures:
                        found.append(f"chapter shows {info['figures']} figures (< {min_chapter_figures})")
                found += link_problems(site, path, info["links"], ids)
                found += sorted(set(events))
                totals["pages"] += 1
                totals["math"] += info["mjx"]
                totals["images"] += info["imgs"]
                totals["details"] += info["details"]
                if found:
                    problems[rel] = found
                if verbose and (rel.startswith("chapters/") or rel == "index.html" or found):
                    print(f"{'FAIL' if found else 'ok  '} {rel}: {info['mjx']} formulas, {info['imgs']} images, "
                          f"{info['details']} collapsibles, {len(info['links'])} links", flush=True)
            if screenshots is not None:
                take_screenshots(page, base, screenshots)
            ctx.close()
    finally:
        server.shutdown()
    if verbose:
        print(f"checked {totals['pages']} pages in {time.perf_counter() - t0:.0f} s: {totals['math']} formulas "
              f"rendered, {totals['images']} images, {totals['details']} collapsibles; "
              f"{len(problems)} pages with problems")
    return problems


def take_screenshots(page, base: str, out: Path) -> list[Path]:
    """The landing page, and chapter 01 at its table of derived scalings (a sympy LaTeX output)."""
    out.mkdir(parents=True, exist_ok=True)
    shots = [out / "site_index.png", out / "site_chapter01.png"]
    page.goto(f"{base}/index.html", wait_until="load")
    page.screenshot(path=str(shots[0]))
    page.goto(f"{base}/chapters/01_gauge_symmetries.html", wait_until="load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise.then(() => true)")
    target = page.locator("div.cell_output mjx-container[display='true']").nth(2)
    target.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -250)")
    page.screenshot(path=str(shots[1]))
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", nargs="?", default="build/site", type=Path, help="the built site (default build/site)")
    ap.add_argument("--screenshots", type=Path, help="folder for two screenshots (landing page, chapter 01)")
    ap.add_argument("--min-chapter-figures", type=int, default=1)
    args = ap.parse_args(argv)
    problems = check_site(args.site, args.screenshots, args.min_chapter_figures)
    for rel, found in problems.items():
        print(f"\n{rel}:")
        for f in found:
            print(f"  - {f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
