"""Sphinx configuration for skae's documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

With ``SKAE_DOCS_FAST=1`` the gallery pages are generated from
``examples/plot_*.py`` without running the scripts (no figures, no output):
what CI uses. Without it every example runs, which takes minutes on a CPU.
"""

import os
import re
import sys
from pathlib import Path

DOC_DIR = Path(__file__).resolve().parent
ROOT = DOC_DIR.parent
sys.path.insert(0, str(ROOT))

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "the skae developers, BSD-3-Clause"  # noqa: A001
version = release = skae.__version__

FAST = os.environ.get("SKAE_DOCS_FAST", "0") not in ("", "0", "false", "False")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "gen_modules/benchmarks/RESULTS.md",  # included by benchmarks.rst
    "gen_modules/backreferences",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "**/sg_execution_times.rst",
    "sg_execution_times.rst",
]

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # document exactly each module's __all__
# Members are chosen by the templates in _templates/, not here: a default
# "members" would document every class twice (module page and class page).
autodoc_default_options = {}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Every public class and module-level function needs an Examples section
# (EX01). Methods and attributes of classes are exempt.
numpydoc_validation_checks = {"EX01"}
numpydoc_validation_exclude = {
    r"\.[A-Z]\w*\.\w+$",  # class members: skae.AutoencoderTransformer.fit
    r"^skae(\.utils)?$",  # packages: their docstrings introduce, not demonstrate
    r"^skae\.(datasets|metrics|model_selection)$",
}


# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Only plot_*.py scripts form the gallery; other scripts in examples/
    # (e.g. train_torchrun.py, launched by torchrun) are not gallery pages.
    "ignore_pattern": r"(^|[/\\])(?!plot_)[^/\\]+\.py$",
    "plot_gallery": "False" if FAST else "True",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skae {version}"
html_static_path = ["_static"]
html_css_files = ["skae.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"install": [], "quickstart": [], "benchmarks": []}

# -- Markdown (benchmarks/RESULTS.md is included in benchmarks.rst) ----------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# RESULTS.md links to sibling .md files that are not part of the site.
suppress_warnings = ["myst.xref_missing", "myst.header"]

# -- Model pages written separately: list only those that exist -------------
OPTIONAL_PAGES = (
    "scaling_out",
    "sparse_ae",
    "denoising_ae",
    "contractive_ae",
    "vae",
    "dictionary_learning",
)


def _drop_missing_pages(app, docname, source):
    """Remove toctree entries of pages that are not written yet."""
    if docname not in ("index", "user_guide"):
        return
    text = source[0]
    for page in OPTIONAL_PAGES:
        if not (DOC_DIR / f"{page}.rst").exists():
            text = re.sub(rf"(?m)^   {re.escape(page)}\n", "", text)
    source[0] = text


# -- Docstring shims ---------------------------------------------------------
# Two habits of plain docstrings that docutils misreads. Rewritten here so the
# API pages build; the docstrings themselves should follow scikit-learn's
# convention (backquoted `n_features_in_`, no backslash continuations in raw
# docstrings) and these shims can then go.
_SHAPE = re.compile(r"of shape \(([^)]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def _quote_shape(match):
    return "of shape (" + _TRAILING_UNDERSCORE.sub(r"`\1`", match.group(1)) + ")"


def _fix_docstring(app, what, name, obj, options, lines):
    fixed = []
    for line in lines:
        line = _SHAPE.sub(_quote_shape, line)
        # "name : {...}, \" + newline + "default=..." in a raw docstring:
        # the backslash survives and the next line reads as a block quote.
        if fixed and fixed[-1].rstrip().endswith("\\"):
            fixed[-1] = fixed[-1].rstrip()[:-1].rstrip() + " " + line.strip()
            continue
        fixed.append(line)
    lines[:] = fixed


# -- Benchmark reports: copied into the source tree with site-relative links --
BENCH_DIR = ROOT / "benchmarks"
BENCH_COPY = DOC_DIR / "gen_modules" / "benchmarks"  # git-ignored
_MD_LINK = re.compile(r"\]\((results/)?([\w.-]+\.(?:md|png))\)")


def _copy_benchmark_reports(app):
    """Put benchmarks/RESULTS.md, results/*.md and the plots where Sphinx
    sees them, rewriting relative links into links inside the site."""
    import shutil

    shutil.rmtree(BENCH_COPY, ignore_errors=True)
    (BENCH_COPY / "results").mkdir(parents=True)
    for png in BENCH_DIR.glob("*.png"):
        shutil.copy(png, BENCH_COPY / png.name)

    def rewrite(match):
        folder, name = match.group(1) or "", match.group(2)
        return f"](/gen_modules/benchmarks/{folder}{name})"

    text = (BENCH_DIR / "RESULTS.md").read_text()
    (BENCH_COPY / "RESULTS.md").write_text(_MD_LINK.sub(rewrite, text))
    for report in sorted((BENCH_DIR / "results").glob("*.md")):
        shutil.copy(report, BENCH_COPY / "results" / report.name)


def _skip_metadata_request_setters(app, what, name, obj, skip, options):
    # scikit-learn generates set_fit_request / set_transform_request for
    # methods with extra arguments (GraphAutoencoder's ``features``); their
    # docstrings cite scikit-learn's glossary, and scikit-learn documents them.
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_setters)
    app.connect("builder-inited", _copy_benchmark_reports)
    app.connect("source-read", _drop_missing_pages)
    # Before numpydoc (priority 500) parses the sections.
    app.connect("autodoc-process-docstring", _fix_docstring, priority=400)
