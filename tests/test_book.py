"""The built book: zero warnings, no re-execution on rebuild, a failing cell fails it, and the
pages a reader gets are complete, accessible and offline (checked in the HTML and in Chromium).

Everything that needs the built book lives in this one module, which `make test` keeps on one
pytest-xdist worker (its xdist_group mark, scheduled by conftest.py), in order, so the build
happens once, before the page checks.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from book_toc import toc_entries
from test_coursework import split_lines
from test_structure import SETUP_LINES

# make test runs this file on one pytest-xdist worker (--dist loadgroup): its tests share
# module fixtures that build or grade once.
pytestmark = pytest.mark.xdist_group("book")

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"


def make(*args, cwd=ROOT):
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True
    )


def warnings_in(output):
    """Sphinx's warnings and errors (not the kernels' own log lines, such as '[IPKernelApp] WARNING |')."""
    return [line for line in output.splitlines() if re.search(r"\b(WARNING|ERROR):", line)]


@pytest.fixture(scope="module")
def built_book():
    """A full build (--all re-reads every page, so no warning hides in the incremental cache)."""
    result = make("book", "BOOK_FLAGS=--all")
    return result.returncode, result.stdout + result.stderr


def test_book_builds_without_warnings(built_book):
    code, log = built_book
    assert code == 0, f"make book failed:\n{log[-5000:]}"
    assert not warnings_in(log), "\n".join(warnings_in(log))
    assert (HTML / "index.html").exists()
    assert "_build/html/index.html" in log, "make book must print where the book is"


def test_rebuild_with_nothing_changed_executes_nothing(built_book):
    again = make("book")
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert "Executing" not in log, "a rebuild with nothing changed must not execute notebooks"


def _notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Gate")] + [
        nbformat.v4.new_code_cell(s) for s in sources
    ]
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return nb


def _throwaway_book(tmp_path, *sources, pages=None):
    """A book using the project's own _config.yml: one page of `sources`, or `pages` ({stem: sources})."""
    pages = pages or {"gate": sources}
    tmp_path.mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book/references.bib", tmp_path / "book/references.bib")
    # The whole folder: the book's extension (tools/book_html.py) imports its neighbours.
    shutil.copytree(ROOT / "tools", tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    first, *rest = pages
    toc = f"format: jb-book\nroot: book/{first}\n"
    if rest:
        toc += "chapters:\n" + "".join(f"- file: book/{stem}\n" for stem in rest)
    (tmp_path / "_toc.yml").write_text(toc)
    for stem, page_sources in pages.items():
        nbformat.write(_notebook(*page_sources), tmp_path / f"book/{stem}.ipynb")
    return tmp_path


def test_a_cold_build_runs_notebooks_in_parallel_and_sphinx_executes_none(tmp_path):
    # Each page records when its kernel started and stopped working; run in parallel, they overlap.
    def page(name):
        return ("import time, pathlib", f"start = time.time(); time.sleep(2)\n"
                f"pathlib.Path({str(tmp_path / name)!r}).write_text(f'{{start}} {{time.time()}}')")

    book = _throwaway_book(tmp_path / "book", pages={"one": page("one"), "two": page("two")})
    cold = make("book", f"BOOK_ROOT={book}")
    log = cold.stdout + cold.stderr
    assert cold.returncode == 0, log[-3000:]
    (start1, end1), (start2, end2) = (map(float, (tmp_path / n).read_text().split()) for n in ("one", "two"))
    if (os.cpu_count() or 1) > 1:
        assert "2 notebook(s), 2 at a time" in log
        assert start2 < end1 and start1 < end2, "the two notebooks must run at the same time"
    assert "Executing notebook" not in log, "Sphinx must find every page already executed"
    assert log.count("Using cached notebook") == 2
    (tmp_path / "one").unlink()
    again = make("book", f"BOOK_ROOT={book}")
    assert again.returncode == 0 and not (tmp_path / "one").exists(), "a warm build executes nothing"


def test_a_failing_cell_fails_the_build(tmp_path):
    ok = make("book", f"BOOK_ROOT={_throwaway_book(tmp_path / 'ok', 'x = 1')}")
    assert ok.returncode == 0, "control: the book without the failing cell must build\n" + ok.stdout[-3000:]

    bad = make("book", f"BOOK_ROOT={_throwaway_book(tmp_path / 'bad', 'x = 1', 'assert x == 2')}")
    assert bad.returncode != 0, "a failing cell must make `make book` fail"
    assert "AssertionError" in bad.stdout + bad.stderr


def test_nbval_run_fills_the_build_cache(tmp_path):
    """`make test` executes each notebook once: nbval's run is cached, and the build reuses it."""
    cells = ("import matplotlib.pyplot as plt\nfrom myst_nb import glue",
             "glue('answer', 42.5)\nprint('printed by the kernel')",
             "fig, ax = plt.subplots(); ax.plot([0, 1]); plt.show()")
    book = _throwaway_book(tmp_path / "book", *cells)
    page = book / "book/gate.ipynb"
    nb = nbformat.read(page, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("The answer is {glue:text}`answer:.1f`."))
    nbformat.write(nb, page)
    tested = subprocess.run([sys.executable, "-m", "pytest", "-c", "/dev/null", "--nbval-lax",
                             "-p", "conftest",
                             "-p", "no:cacheprovider", "-q", str(page)], capture_output=True, text=True,
                            cwd=book, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert tested.returncode == 0, tested.stdout[-3000:]
    built = make("book", f"BOOK_ROOT={book}")
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-3000:]
    assert "Executing" not in log and "Using cached notebook" in log, "the build must reuse nbval's run"
    html = (book / "_build/html/book/gate.html").read_text()
    assert "<img" in html, "the figure nbval's kernel drew must be on the page"
    text = re.sub(r"<[^>]+>", "", html)
    assert "The answer is 42.5." in text and "printed by the kernel" in text


def _nbval(path):
    # -c /dev/null: run nbval alone, without this project's addopts (no xdist inside a worker).
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", "--nbval-lax", "-p", "no:cacheprovider",
         "-q", str(path)],
        capture_output=True, text=True, cwd=path.parent,
    )


def test_a_failing_cell_fails_nbval(tmp_path):
    nbformat.write(_notebook("x = 1"), tmp_path / "ok.ipynb")
    nbformat.write(_notebook("x = 1", "assert x == 2"), tmp_path / "bad.ipynb")
    assert _nbval(tmp_path / "ok.ipynb").returncode == 0
    assert _nbval(tmp_path / "bad.ipynb").returncode != 0


def test_deprecations_in_notebook_code_are_errors(tmp_path):
    """FutureWarning/DeprecationWarning raised from notebook code fail the tests."""
    for category in ("FutureWarning", "DeprecationWarning"):
        path = tmp_path / f"{category}.ipynb"
        nbformat.write(_notebook("import warnings", f"warnings.warn('old API', {category})"), path)
        result = _nbval(path)
        assert result.returncode != 0, f"a {category} in notebook code must fail nbval"
        assert category in result.stdout


def test_notebooks_are_valid_nbformat():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nbformat.validate(nbformat.reads(path.read_text(), as_version=4))
        assert json.loads(path.read_text())["nbformat"] == 4


# ------------------------------------------------------------------ the pages, read as HTML

def toc_pages():
    return [stem for stem, _ in toc_entries()]


class _Page(HTMLParser):
    """Collects what the checks need from one built page's main content."""

    def __init__(self):
        super().__init__()
        self.depth, self.in_main = 0, False
        self.headings, self.images, self.assets, self.downloads = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "main":
            self.in_main = True
        if tag == "script" and attrs.get("src"):
            self.assets.append(attrs["src"])
        if tag == "link" and attrs.get("rel") in ("stylesheet", "preload") and attrs.get("href"):
            self.assets.append(attrs["href"])
        if tag == "a" and (attrs.get("href") or "").endswith(".ipynb"):
            self.downloads.append(attrs["href"])
        if not self.in_main:
            return
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main = False


def parsed(stem):
    page = _Page()
    page.feed((HTML / f"{stem}.html").read_text(encoding="utf-8"))
    return page


@pytest.mark.parametrize("stem", toc_pages())
def test_page_is_accessible_and_self_contained(built_book, stem):
    assert built_book[0] == 0, "the book did not build"
    page = parsed(stem)
    assert page.headings and page.headings[0] == 1, f"{stem}: the page must open with its h1"
    skips = [(a, b) for a, b in zip(page.headings, page.headings[1:], strict=False) if b > a + 1]
    assert not skips, f"{stem}: heading levels skip {skips}"
    for image in page.images:
        assert (image.get("alt") or "").strip(), f"{stem}: image without alt text: {image.get('src')}"
    remote = [a for a in page.assets if re.match(r"(https?:)?//", a)]
    assert not remote, f"{stem}: scripts or styles loaded from the network: {remote}"


@pytest.mark.parametrize("stem", [s for s in toc_pages() if (ROOT / f"{s}.ipynb").exists()])
def test_every_chapter_offers_its_notebook_and_no_grader_markup(built_book, stem):
    assert built_book[0] == 0, "the book did not build"
    page = parsed(stem)
    assert any(d.endswith(Path(stem).name + ".ipynb") for d in page.downloads), f"{stem}: no .ipynb download"
    download = HTML / "_sources" / f"{stem}.ipynb"
    assert download.exists(), f"{stem}: the downloadable notebook is missing"
    for path in (download, HTML / f"{stem}.html"):
        assert "BEGIN HIDDEN TESTS" not in path.read_text(encoding="utf-8"), f"{path.name}: hidden tests"
    page_html = (HTML / f"{stem}.html").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in page_html, f"{stem}: nbgrader markers shown to readers"


STUDENT_HTML = ROOT / "_build" / "student-edition" / "_build" / "html"


def solution_lines(path):
    """Distinctive lines of a chapter's reference solutions and hidden tests, leaving out lines the
    chapter also shows elsewhere (split_lines, shared with the student-notebook leak test)."""
    secret, public = split_lines(nbformat.read(path, as_version=4))
    shown = "\n".join(public)  # a line the exercise itself contains, in part, is no secret
    # Long enough to be an answer's own words or code, not `return w` or a blank line.
    return {line for line in secret - public
            if len(line) >= 40 and not line.startswith(("#", ":")) and line not in shown}


def page_solution_lines(path):
    """Distinctive lines of the {solution} blocks of a Markdown page (the guide's answer key)."""
    import book_html

    text = path.read_text(encoding="utf-8")
    blocks = "\n".join(m.group(0) for m in book_html.SOLUTION_BLOCK.finditer(text))
    return {line.strip() for line in blocks.splitlines() if len(line.strip()) >= 40}


@pytest.fixture(scope="module")
def student_edition(built_book):
    """The edition without solutions, built from the instructor build's execution cache."""
    assert built_book[0] == 0, "the book did not build"
    result = make("book", "EDITION=student", "BOOK_FLAGS=--all")
    return result.returncode, result.stdout + result.stderr


def test_student_edition_builds_from_the_cache_and_holds_no_solution(student_edition):
    code, log = student_edition
    assert code == 0, f"make book EDITION=student failed:\n{log[-5000:]}"
    assert not warnings_in(log), "\n".join(warnings_in(log))
    assert "Executing" not in log, "the student edition must reuse the instructor build's execution"
    assert "student-edition/_build/html/index.html" in log
    published = [p for p in STUDENT_HTML.rglob("*")
                 if p.is_file() and p.suffix in (".html", ".ipynb", ".js", ".txt", ".md")]
    texts = {p: p.read_text(encoding="utf-8", errors="replace") for p in published}
    # What a reader sees: highlighted code is split into spans, so compare the text without tags.
    seen = {p: html.unescape(re.sub(r"<[^>]+>", "", t)) if p.suffix == ".html" else t
            for p, t in texts.items()}
    chapters = [ROOT / f"{stem}.ipynb" for stem in toc_pages() if (ROOT / f"{stem}.ipynb").exists()]
    secrets = {line: path.stem for path in chapters for line in solution_lines(path)}
    assert len(secrets) > 20, "the leak check needs solution lines to look for"
    pages = [ROOT / f"{stem}.md" for stem in toc_pages() if (ROOT / f"{stem}.md").exists()]
    page_secrets = {line: path.stem for path in pages for line in page_solution_lines(path)}
    assert page_secrets, "the guide's answer key must be among the secrets"
    secrets.update(page_secrets)
    for path, body in seen.items():
        leaked = [line for line in secrets if line in body or json.dumps(line)[1:-1] in body]
        assert not leaked, f"{path.relative_to(STUDENT_HTML)} shows a solution: {leaked[:3]}"
    for path in chapters:
        stem = path.relative_to(ROOT).with_suffix("").as_posix()
        page, text = texts[STUDENT_HTML / f"{stem}.html"], seen[STUDENT_HTML / f"{stem}.html"]
        for shown in (text, texts[STUDENT_HTML / "_sources" / f"{stem}.ipynb"]):
            assert "BEGIN SOLUTION" not in shown and "BEGIN HIDDEN TESTS" not in shown, stem
        assert "raise NotImplementedError()" in text, f"{stem}: the answer cells must show the stub"
        assert 'class="exercise' in page and 'class="solution' not in page, (
            f"{stem}: the exercises stay, their written solutions go")
        download = nbformat.reads(texts[STUDENT_HTML / "_sources" / f"{stem}.ipynb"], as_version=4)
        answers = [c for c in download.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert answers and all("raise NotImplementedError()" in c.source for c in answers), stem
    # The instructor's edition, built just before, still shows the reference solutions.
    first = chapters[0].relative_to(ROOT).with_suffix("").as_posix()
    instructor = html.unescape(re.sub(r"<[^>]+>", "", (HTML / f"{first}.html").read_text(encoding="utf-8")))
    assert any(line in instructor for line in solution_lines(chapters[0])), "the leak check finds nothing"


def test_figures_are_transparent_so_the_theme_sets_their_background(built_book):
    """No hard-coded white boxes: figure PNGs let the theme's (light or dark) card show through."""
    import matplotlib.image as mpimg

    assert built_book[0] == 0, "the book did not build"
    figures = sorted((HTML / "_images").glob("*.png"))
    assert figures, "the book has no figures"
    corners = {p.name: mpimg.imread(p)[0, 0] for p in figures}
    opaque = [name for name, pixel in corners.items() if pixel.shape[-1] != 4 or pixel[3] != 0]
    assert not opaque, f"figures with an opaque background: {opaque[:5]}"


# ------------------------------------------------------------------ the pages, in a real browser

def missing_tool(name, package):
    """Skip, saying so plainly, on a developer's machine; fail in CI, which installs the tools."""
    message = f"{name} is not installed (apt-get install {package}; .ci/run does)"
    if os.environ.get("L1L2_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(f"SKIPPED: {message}")


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def browser(built_book):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        missing_tool("Chromium", "chromium")
    assert built_book[0] == 0, "the book did not build"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def open_page(browser, stem, scheme="light"):
    """Load a page; return it with the console errors and off-book requests it produced."""
    page = browser.new_page(color_scheme=scheme, viewport={"width": 1280, "height": 900})
    problems = {"errors": [], "outside": []}
    page.on("console", lambda m: m.type == "error" and problems["errors"].append(m.text))
    page.on("pageerror", lambda e: problems["errors"].append(str(e)))
    page.on("requestfailed", lambda r: problems["errors"].append(f"failed to load {r.url}"))
    page.on("request", lambda r: r.url.startswith(("file:", "data:", "blob:"))
            or problems["outside"].append(r.url))
    page.goto((HTML / f"{stem}.html").as_uri(), wait_until="load")
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    return page, problems


RAW_MATH = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  return ['$$', '\\\\(', '\\\\['].filter(d => body.textContent.includes(d));
}"""

BROKEN_IMAGES = """async () => {
  const bad = [];
  for (const img of document.images) {
    const ok = await new Promise(done => {
      const probe = new Image();
      probe.onload = () => done(probe.naturalWidth > 0);
      probe.onerror = () => done(false);
      probe.src = img.currentSrc || img.src;
    });
    if (!ok) bad.push(img.src.slice(0, 120));
  }
  return bad;
}"""


# Code blocks of visible cells that are wider than their box (folded cells have no width).
SIDEWAYS_CODE = """() => [...document.querySelectorAll('.cell_input pre, .cell_output pre')]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 100))"""


# The code cells under "Setup": whether each shows its code (a folded cell's code sits in a closed
# <details>, which Chromium lays out but does not show), and how many lines it has.
SETUP_CELLS = """() => [...document.querySelectorAll('section#setup .cell')].map(c => {
  const pre = c.querySelector('.cell_input pre');
  return {shown: pre !== null && pre.closest('details:not([open])') === null && pre.checkVisibility(),
          lines: pre ? pre.textContent.trimEnd().split('\\n').length : 0};
})"""


@pytest.mark.parametrize("stem", toc_pages())
def test_page_in_browser(browser, stem):
    """One load per page (MathJax typesets it once): the light-mode checks, its animations, then, on
    a chapter's page, the same page with the reader's system switched to dark."""
    page, problems = open_page(browser, stem)
    try:
        assert not problems["errors"], f"{stem}: console errors {problems['errors']}"
        assert not problems["outside"], f"{stem}: requests leaving the book {problems['outside']}"
        assert not page.evaluate(BROKEN_IMAGES), f"{stem}: images that do not load"
        if page.locator(".math").count():
            assert page.locator("mjx-container").count() > 0, f"{stem}: math was not typeset"
            assert not page.evaluate(RAW_MATH), f"{stem}: raw TeX delimiters left in the page"
        if (ROOT / f"{stem}.ipynb").exists():
            assert not page.evaluate(SIDEWAYS_CODE), f"{stem}: code cells that scroll sideways at 1280 px"
            setup, *folded = page.evaluate(SETUP_CELLS)
            assert setup["shown"] and setup["lines"] <= SETUP_LINES, f"{stem}: the visible setup cell {setup}"
            assert folded and not any(c["shown"] for c in folded), f"{stem}: setup's other cells must fold"
            check = page.locator("details.hide:has(summary:has-text('Check'))")
            assert check.count() > 0, f"{stem}: no folded check on the page"
            code = check.first.locator(".cell_input pre").first
            assert not code.is_visible(), f"{stem}: a check must start folded"
            check.first.locator("summary").click()
            assert code.is_visible() and "assert" in code.inner_text(), f"{stem}: a check must open on click"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{Path(stem).name}.png")
        animations_play(page, stem)
        if (ROOT / f"{stem}.ipynb").exists():
            figures_stay_readable_in_dark_mode(page, stem)
        assert not problems["errors"] and not problems["outside"], f"{stem}: {problems}"
    finally:
        page.close()


def test_claims_ledger_lists_every_checked_claim(built_book):
    """The ledger is generated from the notebooks: one entry per assert of every claim check."""
    import book_html

    expected = 0
    for stem in toc_pages():
        if (ROOT / f"{stem}.ipynb").exists():
            nb = json.loads((ROOT / f"{stem}.ipynb").read_text(encoding="utf-8"))
            expected += sum(len(asserts) for _, asserts in book_html.check_cells(nb))
    page = (HTML / "book" / "claims_ledger.html").read_text(encoding="utf-8")
    listed = len(re.findall(r'<li class="claim">', page))
    assert expected > 500 and listed == expected, (
        f"the ledger lists {listed} claims, the book checks {expected}")
    assert "(no message)" not in page
    assert re.search(r'; stops <code class="docutils literal notranslate"><span class="pre">[\w-]+', page), (
        "the ledger must name the mutants each check stops")


ANIMATION_LIMIT = 2 * 1024 * 1024  # bytes of HTML per animation


def animations_in(stem):
    """Sizes in bytes of the self-contained animations (matplotlib's to_jshtml) in a page."""
    page = (HTML / f"{stem}.html").read_text(encoding="utf-8")
    starts = [m.start() for m in re.finditer(r'<div class="animation">', page)]
    return [len(page[s: page.index("</script>", s)].encode()) for s in starts]


def test_lambda_sweeps_are_self_contained_animations(built_book):
    """Played in a browser by test_page_in_browser (animations_play)."""
    assert built_book[0] == 0, "the book did not build"
    found = {stem: animations_in(stem) for stem in toc_pages()}
    found = {stem: sizes for stem, sizes in found.items() if sizes}
    assert sum(len(s) for s in found.values()) >= 2, f"at least two animations expected, found {found}"
    for stem, sizes in found.items():
        assert max(sizes) < ANIMATION_LIMIT, f"{stem}: an animation of {max(sizes)} bytes"


def animations_play(page, stem):
    """Every animation on the loaded page shows a picture, has alt text and advances on 'Next frame'."""
    for k in range(page.locator(".animation").count()):
        animation = page.locator(".animation").nth(k)
        animation.scroll_into_view_if_needed()
        image = animation.locator("img")
        before = image.get_attribute("src")
        animation.locator("button[title='Next frame']").click()
        after = image.get_attribute("src")
        assert before != after, f"{stem}: animation {k} does not advance"
        assert image.get_attribute("alt"), f"{stem}: animation {k} has no alt text"
        assert page.evaluate("img => img.naturalWidth > 0", image.element_handle())


def luminance(rgb):
    def linear(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# What shows behind an element: the first opaque background from it outwards, as [r, g, b].
SHOWN_BEHIND = """start => {
  for (let el = start; el; el = el.parentElement) {
    const m = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g);
    if (m && (m.length < 4 || Number(m[3]) > 0.5)) return m.slice(0, 3).map(Number);
  }
  return null;
}"""
FIGURE_BACKGROUNDS = f"() => Array.from(document.querySelectorAll('div.cell_output img')).map({SHOWN_BEHIND})"


# The colour behind the page's text.
PAGE_BACKGROUND = f"() => ({SHOWN_BEHIND})(document.body)"


def figures_stay_readable_in_dark_mode(page, stem):
    """The loaded page, once the reader's system asks for dark: the theme (in its default "auto"
    mode) must follow, and what shows through the figures' transparent background must be light."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    assert page.evaluate("document.documentElement.dataset.mode") == "auto", f"{stem}: the theme's mode"
    before = page.evaluate(PAGE_BACKGROUND)
    assert page.evaluate("document.documentElement.dataset.theme") == "light", f"{stem}: light before"
    assert before is not None and luminance(before) > 0.5, f"{stem}: the light page's background {before}"
    page.emulate_media(color_scheme="dark")
    try:
        page.wait_for_function("document.documentElement.dataset.theme === 'dark'", timeout=5000)
    except PlaywrightTimeout:
        pytest.fail(f"{stem}: the theme did not follow the reader's dark colour scheme")
    figures_readable_in_dark(page, stem)


def figures_readable_in_dark(page, stem):
    """The page is dark now (its body's background), and every figure sits on a light card."""
    body = page.evaluate(PAGE_BACKGROUND)
    assert body is not None and luminance(body) < 0.2, f"{stem}: the dark background did not apply: {body}"
    backgrounds = page.evaluate(FIGURE_BACKGROUNDS)
    assert backgrounds, f"{stem}: no figures found to check in dark mode"
    # Figures draw dark text on a transparent background: what shows through must be light.
    dim = [bg for bg in backgrounds if bg is None or luminance(bg) < 0.4]
    assert not dim, f"{stem}: figures on a dark background in dark mode: {dim}"


def test_a_page_opened_in_dark_mode_starts_dark(browser):
    """A reader whose system is dark gets the dark theme once the page has loaded (the theme's
    start-up path, not only its switch, which test_page_in_browser checks on every chapter page)."""
    stem = next(s for s in toc_pages() if (ROOT / f"{s}.ipynb").exists())
    page, problems = open_page(browser, stem, scheme="dark")
    try:
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        figures_readable_in_dark(page, stem)
        assert not problems["errors"] and not problems["outside"], f"{stem} in dark mode: {problems}"
    finally:
        page.close()


# ------------------------------------------------------------------ the PDF handout

def test_pdf_handout_builds_and_contains_every_chapter(built_book):
    if not (shutil.which("xelatex") and shutil.which("latexmk")):
        missing_tool("TeX Live", "texlive-xetex texlive-latex-extra texlive-fonts-recommended latexmk")
    if not shutil.which("pdftotext"):
        missing_tool("pdftotext", "poppler-utils")
    assert built_book[0] == 0, "the book did not build"
    result = make("pdf")
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    pdf = ROOT / "_build" / "l1-l2-regularization.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    titles = [title for _, title in toc_entries() if title]
    missing = [t for t in titles if " ".join(t.split()) not in flat]
    assert not missing, f"chapters missing from the PDF: {missing}"
