"""Sphinx configuration of kanopy's documentation (pydata theme, numpydoc, sphinx-gallery).

Built offline by ``make docs`` into docs/_build/html; warnings are errors there and in CI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

import kanopy  # noqa: E402

project = "kanopy"
author = "the kanopy developers"
copyright = "2026, the kanopy developers"
release = version = kanopy.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py.md5", "**/*.zip"]
templates_path = ["_templates"]

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_inherit_docstrings = False  # nn.Module's and scikit-learn's docstrings are not ours (nor numpydoc)
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_validation_checks = {"PR01", "PR02", "RT01", "EX01"}  # every parameter, return and example documented

intersphinx_mapping = {}  # offline: no inventories are fetched
nitpicky = False

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py",  # every example in the gallery runs at build time, with its plots
    # continual_learning.py is a benchmark script (argparse, 5 phases x 100 LBFGS steps of a grid-200 KAN and
    # an MLP: minutes on a loaded machine); its figure (docs/continual_learning.png) is in the user guide with
    # the command that makes it; the PDE examples are scripts too (argparse, --quick; Burgers takes
    # minutes), run by tests/integration/test_pde_examples.py and bench/pde.py instead
    "ignore_pattern": r"(continual_learning|pde_\w+)\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "min_reported_time": 1,
}

html_theme = "pydata_sphinx_theme"
html_title = "kanopy"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
myst_heading_anchors = 3


def _skip_member(app, what, name, obj, skip, options):
    """Leave out what is not kanopy's own: scikit-learn's metadata-routing methods
    (set_*_request) on the estimator, and names a documented module imports (kanopy.prune
    imports dataclass and metrics.rmse)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if what == "module" and getattr(obj, "__module__", "kanopy.prune") != "kanopy.prune":
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
