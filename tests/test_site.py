"""The browser check of the course website (tools/check_site.py) catches what it claims to catch.

It runs the checker on small hand-made sites: a good one passes; a broken image, a broken link, a
missing anchor, a JavaScript error, a request outside the site, math MathJax never typeset, and the
``<IPython.core.display.Math object>`` text fallback each fail. Needs Playwright (the ``docs`` extra)
and Chromium (``apt-get install chromium``); skipped without them. ``.ci/run`` installs both, runs this
file, then builds the real site and checks every page with the same tool.
"""

from __future__ import annotations

import base64
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _tool():
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "tools" / "check_site.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check = _tool()
# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")


def _page(body: str, title: str = "t") -> str:
    return (f"<!doctype html><html><head><title>{title}</title></head>"
            f"<body><main><article>{body}</article></main></body></html>")


def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "ok.png").write_bytes(PNG)
    for name, body in pages.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(_page(body))
    return site


def test_link_problems_without_a_browser(tmp_path):
    site = _site(tmp_path, {"index.html": "", "a/b.html": "<h2 id='sec'>s</h2>"})
    page = site / "index.html"
    ids: dict = {}
    hrefs = ["a/b.html", "a/b.html#sec", "a/b.html#nope", "missing.html", "#", "https://example.org/x",
             "mailto:x@y", "../outside.html"]
    found = check.link_problems(site, page, hrefs, ids)
    assert found == sorted(["broken link '../outside.html'", "broken link 'missing.html'",
                            "link 'a/b.html#nope': no id 'nope' in b.html"])


needs_browser = pytest.mark.skipif(not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None,
                                   reason="needs Chromium (apt-get install chromium) and playwright (docs extra)")


@needs_browser
def test_good_site_passes_and_each_defect_is_caught(tmp_path):
    good = {
        "index.html": "<a href='sub/page.html#part'>x</a> <img src='img/ok.png'>"
                      "<details><summary>Answer</summary><p>42</p></details>",
        "sub/page.html": "<h2 id='part'>part</h2><a href='../index.html'>back</a>",
    }
    assert check.check_site(_site(tmp_path / "good", good), verbose=False) == {}

    bad = dict(good)
    bad["broken_img.html"] = "<img src='img/missing.png'>"
    bad["broken_link.html"] = "<a href='nowhere.html'>x</a>"
    bad["js_error.html"] = "<script>undefined_function()</script>"
    bad["external.html"] = "<img src='http://203.0.113.1/x.png'>"
    bad["fallback.html"] = "<pre>&lt;IPython.core.display.Math object&gt;</pre>"
    bad["open_details.html"] = "<details open><summary>Answer</summary>42</details>"
    bad["raw_tex.html"] = "<p>$$\\theta' = \\theta + s</p><ul><li>\\tfrac{1}{2} x$$</li></ul>"
    problems = check.check_site(_site(tmp_path / "bad", bad), verbose=False, math_timeout_s=2)
    assert set(problems) == {"broken_img.html", "broken_link.html", "js_error.html", "external.html",
                             "fallback.html", "open_details.html", "raw_tex.html"}
    assert any("image not loaded" in p for p in problems["broken_img.html"])
    assert any("broken link" in p for p in problems["broken_link.html"])
    assert any("undefined_function" in p for p in problems["js_error.html"])
    assert any("outside the site" in p for p in problems["external.html"])
    assert any("text fallback" in p for p in problems["fallback.html"])
    assert any("<details>" in p for p in problems["open_details.html"])
    assert any("raw TeX shown as text" in p for p in problems["raw_tex.html"])


@needs_browser
def test_untypeset_math_and_chapters_without_figures_fail(tmp_path):
    site = _site(tmp_path, {"index.html": "", "chapters/01.html": r"<span class='math'>\(x^2\)</span>"})
    problems = check.check_site(site, verbose=False, math_timeout_s=2)
    assert list(problems) == ["chapters/01.html"]
    found = " | ".join(problems["chapters/01.html"])
    assert "MathJax did not start" in found and "math not rendered" in found
    assert "chapter without rendered math" in found and "0 figures" in found
