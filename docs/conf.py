"""Sphinx configuration of the course website.

Build (no notebook is executed; the committed outputs are rendered):

    .venv/bin/python -m sphinx -b html docs build/site

At start-up this file copies ``notebooks/*.ipynb`` into ``docs/chapters/`` and writes
``docs/_generated/reference_results.md`` from ``results/reference/REPORT.md`` (or a note that it is
absent). MathJax is served from the site itself (the ``django-static-mathjax`` wheel ships MathJax 3),
so pages typeset math without reaching any CDN.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# -- generated sources ------------------------------------------------------------------------------------
CHAPTERS = DOCS / "chapters"
if CHAPTERS.exists():
    shutil.rmtree(CHAPTERS)
CHAPTERS.mkdir()
for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
    shutil.copy2(nb, CHAPTERS / nb.name)

GENERATED = DOCS / "_generated"
GENERATED.mkdir(exist_ok=True)
_report = ROOT / "results" / "reference" / "REPORT.md"
if _report.exists():
    _body = _report.read_text(encoding="utf-8")
    # the report's own title would become a second page title: demote every heading by two levels
    _lines, _fenced = [], False
    for _line in _body.splitlines():
        _fenced ^= _line.startswith("```")
        _lines.append("##" + _line if _line.startswith("#") and not _fenced else _line)
    _body = "\n".join(_lines)
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import summary_markdown

    _summary = summary_markdown(ROOT / "results" / "reference", ROOT / "results" / "quick")
    _text = ("Every trained claim, quick run beside reference run (`results/quick/`, `results/reference/`, "
             "as committed; every figure measured by `scalegmn-lite reproduce`, never typed). A claim "
             "*holds* when its 95% interval excludes the opposite, is *refuted* when it excludes the claim, "
             "and is *inconclusive* otherwise. Chapters 06-08 plot the reference figures next to the quick "
             "ones.\n\n" + _summary + "\n### The reference run's full report\n\n" + _body + "\n")
else:
    _text = ("```{note}\nThe reference results are **absent** from this checkout: `results/reference/REPORT.md` "
             "did not exist when this site was built. Run `.venv/bin/scalegmn-lite reproduce --quick --out "
             "results` to measure them on your machine (`results/REPORT.md`).\n```\n")
(GENERATED / "reference_results.md").write_text(_text, encoding="utf-8")

# -- project ----------------------------------------------------------------------------------------------
project = "scalegmn-lite"
author = "scalegmn-lite authors"
copyright = "scalegmn-lite authors, MIT licence"
release = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_templates", "_generated/*.md"]
suppress_warnings = ["myst.header"]  # notebooks start at "# NN · title" and then use "##" sections

# -- notebooks: rendered from their committed outputs -----------------------------------------------------
nb_execution_mode = "off"
nb_output_stderr = "remove"  # warnings and progress bars are noise on the site
nb_merge_streams = True
nb_ipywidgets_js = {}  # widgets need a live kernel; their cells show a static figure next to them
myst_enable_extensions = ["dollarmath", "amsmath"]
# the notebooks (as Jupyter does) put $$...$$ on lines inside a paragraph; without this MyST reads them
# as stray $ pairs and shows TeX as text (tools/check_site.py fails such a page)
myst_dmath_double_inline = True
myst_heading_anchors = 3

# -- API reference from the docstrings ----------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

# -- HTML -------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "scalegmn-lite course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
# the theme's first page in a fresh browser reads the colour mode from this (empty by default, which its
# own script then logs as a console error: "Got invalid theme mode: ."); later pages read localStorage
html_context = {"default_mode": "auto"}

# MathJax 3 from the django-static-mathjax wheel, copied into the site (no CDN: the site works offline)
mathjax_path = "mathjax/tex-mml-chtml.js"
mathjax3_config = {
    "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
    "options": {"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"},
}


def _mathjax_dir() -> Path:
    spec = importlib.util.find_spec("mathjax")
    es5 = Path(spec.origin).parent / "static" / "mathjax" / "es5" if spec and spec.origin else None
    if es5 is None or not (es5 / "tex-mml-chtml.js").exists():
        raise RuntimeError("MathJax 3 not found: install the docs extra, "
                           ".venv/bin/pip install -c constraints.txt -e \".[docs]\"")
    return es5


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        # the one combined file we load plus what it loads lazily (fonts, TeX extensions, menu, a11y)
        skip = shutil.ignore_patterns("*svg*", "tex-chtml*.js", "mml-*.js", "node-main.js", "tex-mml-chtml-*")
        shutil.copytree(_mathjax_dir(), Path(app.outdir) / "_static" / "mathjax", ignore=skip, dirs_exist_ok=True)


def setup(app):
    _mathjax_dir()  # fail early, with the fix, before reading every page
    app.connect("build-finished", _copy_mathjax)
