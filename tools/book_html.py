"""Sphinx extension for this book (listed under `sphinx.local_extensions` in _config.yml).

It keeps every page self-contained and error-free when read offline:
- the theme's light/dark switch gets a valid default mode ("auto": follow the reader's system),
  instead of an empty one that the theme reports as a console error;
- sphinx-thebe's loader scripts are dropped: the book has no live-code buttons, and the loader
  (which Jupyter Book adds twice, a console error) only points at a CDN;
- the `.ipynb` offered for download is the reader's notebook: hidden tests, which exist for
  graders only, are removed from the copies under `_sources/`;
- nbgrader's `### BEGIN/END SOLUTION` marker lines are dropped from the code readers see (they
  stay in the notebooks, where the coursework tools need them);
- launch buttons (Binder, Colab) appear as soon as `repository.url` is set in _config.yml: the
  public services are filled in then, and only then (with no repository they would break).
"""

import json
import re
from pathlib import Path

from docutils import nodes

SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def _page_context(app, pagename, templatename, context, doctree):
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    seen, kept = set(), []
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body", "")
        key = (str(script), body)
        if "THEBE_JS_URL" in body or "sphinx-thebe" in str(script) or key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def _strip_hidden_tests(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir, "_sources").rglob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if "BEGIN HIDDEN TESTS" not in "".join(c["source"])]
        if len(cells) != len(nb["cells"]):
            nb["cells"] = cells
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _drop_solution_markers(app, doctree):
    for block in list(doctree.findall(nodes.literal_block)):
        source = block.astext()
        if SOLUTION_MARKER.search(source):
            cleaned = SOLUTION_MARKER.sub("", source)
            block.replace_self(nodes.literal_block(cleaned, cleaned, **block.attributes))


def _launch_buttons(app, config):
    options = config.html_theme_options
    if options.get("repository_url"):
        buttons = options.setdefault("launch_buttons", {})
        buttons["binderhub_url"] = buttons.get("binderhub_url") or "https://mybinder.org"
        buttons["colab_url"] = buttons.get("colab_url") or "https://colab.research.google.com"


def setup(app):
    app.connect("config-inited", _launch_buttons)
    app.connect("doctree-read", _drop_solution_markers)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _strip_hidden_tests)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
