"""Sphinx extension for this book (listed under `sphinx.local_extensions` in _config.yml).

It keeps every page self-contained and error-free when read offline:
- the theme's light/dark switch gets a valid default mode ("auto": follow the reader's system),
  instead of an empty one that the theme reports as a console error;
- sphinx-thebe's loader scripts are dropped: the book has no live-code buttons, and the loader
  (which Jupyter Book adds twice, a console error) only points at a CDN;
- the `.ipynb` offered for download is the reader's notebook: hidden tests, which exist for
  graders only, are removed from the copies under `_sources/` (and, in the student edition,
  every `{solution}` block, the Markdown pages' included);
- nbgrader's `### BEGIN/END SOLUTION` marker lines are dropped from the code readers see (they
  stay in the notebooks, where the coursework tools need them);
- code cells fit a 1280-pixel-wide window without scrolling sideways (book_static/book.css);
- launch buttons (Binder, Colab) appear as soon as `repository.url` is set in _config.yml: the
  public services are filled in then, and only then (with no repository they would break);
- the bibliography's plugin lookups are remembered (_remember_bibtex_plugins): pybtex and
  sphinxcontrib-bibtex scan every installed package's entry points for each citation resolved,
  10-20 ms a time for some 500 citations, about 6 s of CPU in every build of this book.

With the environment variable L1L2_EDITION=student (`make book EDITION=student`), it builds the
student edition: no written solutions (sphinx-exercise's `hide_solutions`), each answer cell shown
as the stub students fill in, downloads that hold the same stubs, and no launch buttons (they
would open the repository's notebooks, which hold the solutions). It reuses the instructor
build's execution cache, so it executes nothing that build has executed.
"""

import ast
import functools
import json
import os
import re
from pathlib import Path

from course import WRITTEN_SOLUTION  # tools/ is on the path of local extensions
from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*$",
                             re.M | re.S)


def student_edition():
    return os.environ.get("L1L2_EDITION", "instructor") == "student"


def stub(source):
    """An answer cell as students receive it: each solution region becomes nbgrader's stub."""
    def replace(match):
        indent = match.group(1)
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"

    return SOLUTION_REGION.sub(replace, source)


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


SOLUTION_BLOCK = re.compile(r"^(`{3,})\{solution\}.*?^\1[ \t]*$\n?", re.M | re.S)


def _reader_notebooks(app, exception):
    """The `.ipynb` downloads: no hidden tests; in the student edition, no solutions either (nor in
    the Markdown pages' sources, such as the answer key in the instructor guide)."""
    if exception is not None or app.builder.format != "html":
        return
    if student_edition():
        for path in Path(app.outdir, "_sources").rglob("*.md"):
            text = path.read_text(encoding="utf-8")
            path.write_text(SOLUTION_BLOCK.sub("", text), encoding="utf-8")
    for path in Path(app.outdir, "_sources").rglob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if "BEGIN HIDDEN TESTS" not in "".join(c["source"])]
        if student_edition():
            cells = [c for c in cells if not (c["cell_type"] == "markdown"
                                              and WRITTEN_SOLUTION.match("".join(c["source"])))]
            for cell in cells:
                if cell["metadata"].get("nbgrader", {}).get("solution"):
                    cell["source"] = stub("".join(cell["source"]))
        nb["cells"] = cells
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _answer_cell(node):
    return (isinstance(node, nodes.container) and node.get("nb_element") == "cell_code"
            and node.get("cell_metadata", {}).get("nbgrader", {}).get("solution"))


def _drop_solution_markers(app, doctree):
    """Readers never see nbgrader's markers; students never see what lies between them."""
    if student_edition():
        for cell in list(doctree.findall(_answer_cell)):
            for block in list(cell.findall(nodes.literal_block)):
                if SOLUTION_MARKER.search(block.astext()):
                    shown = stub(block.astext())
                    block.replace_self(nodes.literal_block(shown, shown, **block.attributes))
            cell.attributes.pop("hide_mode", None)  # the stub is the question: show it unfolded
    for block in list(doctree.findall(nodes.literal_block)):
        source = block.astext()
        if SOLUTION_MARKER.search(source):
            cleaned = SOLUTION_MARKER.sub("", source)
            block.replace_self(nodes.literal_block(cleaned, cleaned, **block.attributes))


def _student_config(app, config):
    """The student edition: no written solutions, the instructor build's execution cache, no
    launch buttons."""
    if not student_edition():
        return
    config.hide_solutions = True
    import book_toc

    config.nb_execution_cache_path = str(book_toc.execution_cache(app.srcdir).resolve())
    buttons = config.html_theme_options.setdefault("launch_buttons", {})
    buttons["binderhub_url"] = buttons["colab_url"] = buttons["jupyterhub_url"] = ""


def _launch_buttons(app, config):
    options = config.html_theme_options
    if options.get("repository_url"):
        buttons = options.setdefault("launch_buttons", {})
        buttons["binderhub_url"] = buttons.get("binderhub_url") or "https://mybinder.org"
        buttons["colab_url"] = buttons.get("colab_url") or "https://colab.research.google.com"


# --- The claims ledger: every checked claim of the book, generated from the notebooks ---------

logger = logging.getLogger(__name__)
BOOKKEEPING = "bookkeeping"  # the tag of check cells that test the page itself (alt text, ...)
LABEL_LINE = re.compile(r"^\(([\w-]+)\)=\s*$", re.M)


def _message_text(node):
    """An assert message in plain words: its literal text, each computed part shown as `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _message_text(node.left), _message_text(node.right)
        return None if left is None or right is None else left + right
    return None


def _could_hold(message, expect):
    """Whether `message` (each … a part computed at run time) can hold `expect` when its check runs,
    with at least half of `expect` in its written text: how the ledger places a mutant whose words
    are partly computed (claims.intended_check names no assert for it)."""
    if expect in message:
        return True
    pieces = message.split("…")
    for i in range(len(pieces) - 1):
        for j in range(i + 1, len(pieces)):
            # expect = the end of piece i, a computed part, the pieces between (each after a
            # computed part), a computed part, the start of piece j
            for k in range(min(len(pieces[i]), len(expect)) + 1):
                if k and not pieces[i].endswith(expect[:k]):
                    continue
                rest, position, written = expect[k:], 0, k
                for middle in pieces[i + 1:j]:
                    found = rest.find(middle, position)
                    if found < 0:
                        break
                    position, written = found + len(middle), written + len(middle)
                else:
                    tail = rest[position:]
                    written += max(n for n in range(len(tail) + 1)
                                   if pieces[j].startswith(tail[len(tail) - n:]))
                    if 2 * written >= len(expect):
                        return True
    return False


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def check_cells(nb):
    """(cell, [(assert node, message or None)]) for every claim check of a notebook: code cells with
    an assert that are neither nbgrader cells nor tagged bookkeeping."""
    found = []
    for cell in nb["cells"]:
        source = _source(cell)
        meta = cell.get("metadata", {})
        if (cell["cell_type"] != "code" or meta.get("nbgrader") or BOOKKEEPING in meta.get("tags", [])
                or "assert" not in source):
            continue
        tree = ast.parse(re.sub(r"^\s*[%!].*$", "", source, flags=re.M))
        asserts = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Assert)), key=lambda n: n.lineno)
        if asserts:
            found.append((cell, [(a, _message_text(a.msg) if a.msg else None) for a in asserts]))
    return found


def ledger_entries(notebook, mutants_file):
    """[(section label or None, claim, [mutant names])] for one chapter, in reading order. A mutant
    is listed under the asserts whose kill the mutation harness would count (claims.intended_check):
    those that say its `expect` words, in the first check cell after its edit that has one; or,
    where no message holds the words as written text, under every later claim whose message can
    hold them once its computed parts are filled in (_could_hold)."""
    import claims

    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    mutants = []
    if mutants_file is not None and Path(mutants_file).is_file():  # None: the claims alone
        mutants = claims.read_mutants(Path(mutants_file), claims.read_cells(notebook))
    named, loose = {}, [m for m in mutants if m.check is None]
    for m in mutants:
        for first, _ in m.check[1] if m.check else ():
            named.setdefault((m.check[0], first), []).append(m.name)
    entries, label, checks = [], None, {id(cell): asserts for cell, asserts in check_cells(nb)}
    code_index = -1
    for cell in nb["cells"]:
        source = _source(cell)
        if cell["cell_type"] == "markdown":
            labels = LABEL_LINE.findall(source)
            label = labels[-1] if labels else label
            continue
        if cell["cell_type"] != "code":
            continue
        code_index += 1
        for check, message in checks.get(id(cell), []):
            killers = named.get((code_index, check.lineno), []) + [
                m.name for m in loose if message and code_index > m.cell and _could_hold(message, m.expect)]
            entries.append((label, message, killers))
    return entries


class ClaimsLedger(SphinxDirective):
    """`{claims-ledger}`: for each chapter in the toc, each checked claim (its assert's message),
    a link to its section and the wrong-world mutants it stops (ledger_entries)."""

    def run(self):
        import book_toc
        import claims

        root = Path(self.env.srcdir)
        container = nodes.container(classes=["claims-ledger"])
        for stem, title in book_toc.toc_entries(root):
            notebook = root / f"{stem}.ipynb"
            if not notebook.is_file():
                continue
            mutants_file = root / "tests" / "mutants" / f"{Path(stem).name}.toml"
            self.env.note_dependency(str(notebook))
            self.env.note_dependency(str(mutants_file))
            try:
                entries = ledger_entries(notebook, mutants_file)
            except claims.UsageError as error:  # a bad mutant file: its claims are listed without mutants
                logger.warning(f"claims ledger: {error}", location=(self.env.docname, self.lineno))
                self.env.note_reread()  # warn again at the next build, until the file is fixed
                entries = ledger_entries(notebook, None)
            if not entries:
                continue
            heading = nodes.rubric(classes=["claims-chapter"])
            heading += self._link("doc", "/" + stem, title or stem)
            container += heading
            items = nodes.bullet_list(classes=["claims"])
            for label, claim, killers in entries:
                paragraph = nodes.paragraph()
                paragraph += nodes.Text(claim or "(no message)")
                paragraph += nodes.Text(" — ")
                paragraph += self._link("ref", label, None) if label else self._link("doc", "/" + stem, title)
                if killers:
                    paragraph += nodes.Text("; stops ")
                    for i, name in enumerate(killers):
                        paragraph += nodes.literal(name, name)
                        if i < len(killers) - 1:
                            paragraph += nodes.Text(", ")
                items += nodes.list_item("", paragraph, classes=["claim"])
            container += items
        return [container]

    def _link(self, kind, target, text):
        ref = addnodes.pending_xref("", refdomain="std", reftype=kind, reftarget=target,
                                    refexplicit=text is not None, refdoc=self.env.docname)
        ref += nodes.inline(text or target, text or target)
        return ref


def _static_files(app, config):
    config.html_static_path.append(str(Path(__file__).parent / "book_static"))


def _remembered(lookup):
    """`lookup`, an entry-points function called with group= and maybe name=, answering each
    question once."""
    @functools.cache
    def answer(group, name):
        return tuple(lookup(group=group) if name is None else lookup(group=group, name=name))

    def entry_points(group, name=None):
        return answer(group, name)

    entry_points.remembered = True
    return entry_points


def _remember_bibtex_plugins():
    """Look each plugin's entry points up once per process instead of once per citation. The
    installed packages do not change during a build, and plugins registered at run time are
    still found first: both libraries check their own registries before the entry points."""
    import pybtex.plugin
    import sphinxcontrib.bibtex.plugin as bibtex_plugin

    for module, name in ((pybtex.plugin, "entry_points"), (bibtex_plugin, "_entry_points")):
        if not getattr(getattr(module, name), "remembered", False):  # once per process
            setattr(module, name, _remembered(getattr(module, name)))


def setup(app):
    _remember_bibtex_plugins()
    app.connect("config-inited", _static_files)
    app.add_css_file("book.css")
    app.connect("config-inited", _launch_buttons)
    app.connect("config-inited", _student_config, priority=900)  # after the buttons are filled in
    app.connect("doctree-read", _drop_solution_markers)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _reader_notebooks)
    app.add_directive("claims-ledger", ClaimsLedger)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
