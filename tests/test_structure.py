"""Structural conventions of the book, checked without a kernel. One convention per test."""

import ast
import builtins
import json
import re
from pathlib import Path

import pytest
from book_toc import toc_entries
from judge import names_defined

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"


def source_of(stem):
    for suffix in (".ipynb", ".md"):
        path = ROOT / (stem + suffix)
        if path.exists():
            return path
    return None


NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if re.match(r"\d", p.name)]
nb_params = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
chapter_params = pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def text(cell):
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def markdown_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "markdown"]


def h1_lines(markdown):
    in_fence = False
    found = []
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~", ":::")):
            in_fence = not in_fence
        elif not in_fence and re.match(r"# \S", line):
            found.append(line[2:].strip())
    return found


def test_every_toc_entry_exists():
    missing = [stem for stem, _ in toc_entries() if source_of(stem) is None]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


def test_every_page_in_book_is_in_the_toc():
    listed = {stem for stem, _ in toc_entries()}
    pages = {
        str(p.relative_to(ROOT).with_suffix(""))
        for p in list(BOOK.glob("*.ipynb")) + list(BOOK.glob("*.md"))
    }
    assert not pages - listed, f"pages missing from _toc.yml: {sorted(pages - listed)}"


@pytest.mark.parametrize("stem,title", [e for e in toc_entries() if e[1]], ids=lambda v: str(v))
def test_one_h1_matching_the_toc_title(stem, title):
    path = source_of(stem)
    assert path is not None, f"{stem} does not exist"
    if path.suffix == ".ipynb":
        markdown = "\n".join(text(c) for c in markdown_cells(load(path)))
    else:
        markdown = path.read_text(encoding="utf-8")
    assert h1_lines(markdown) == [title], (
        f"{path.name} must have exactly one H1 equal to its _toc.yml title {title!r}"
    )


@nb_params
def test_no_outputs_or_execution_counts_stored(path):
    dirty = [
        i for i, c in enumerate(load(path)["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts"


@nb_params
def test_kernelspec_is_plain_python3(path):
    spec = load(path)["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3", f"{path.name}: kernelspec {spec!r}"
    assert spec.get("language") == "python"


@nb_params
def test_no_machine_specific_metadata(path):
    nb = load(path)
    allowed = {"kernelspec", "language_info"}
    assert set(nb["metadata"]) <= allowed, f"{path.name}: notebook metadata {sorted(nb['metadata'])}"
    lang = nb["metadata"].get("language_info", {})
    assert set(lang) <= {"name"}, f"{path.name}: language_info carries {sorted(lang)}"


SETUP_LINES = 12  # the visible setup: the imports and the seed, nothing a reader must scroll past
SEED_LINES = "SEED = 0\nrng = np.random.default_rng(SEED)"


def _shared_style_cell():
    """The folded cell (plot defaults, glue fallback) every chapter shares, taken from chapter 1."""
    return code_cells(load(BOOK / "01_why_regularize.ipynb"))[1]


@chapter_params
def test_setup_cell_is_first_and_shared(path):
    nb = load(path)
    cells = nb["cells"]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert text(cells[first_code - 1]).strip() == "## Setup", (
        f"{path.name}: the first code cell must sit right under '## Setup'"
    )
    setup = text(cells[first_code])
    assert setup.startswith("import "), f"{path.name}: setup cell must start with its imports"
    assert setup.endswith("\n\n" + SEED_LINES), f"{path.name}: the setup cell must end with the seed lines"
    assert len(setup.splitlines()) <= SETUP_LINES, (
        f"{path.name}: the visible setup cell has {len(setup.splitlines())} lines (at most {SETUP_LINES}); "
        "import what one section needs in that section's first cell"
    )
    imports = setup[: setup.index("SEED = 0")].strip().splitlines()
    assert imports == sorted(imports, key=lambda line: (line.startswith("from"), line)), (
        f"{path.name}: imports in the setup cell are not sorted"
    )
    style, shared = cells[first_code + 1], _shared_style_cell()
    assert style["cell_type"] == "code" and text(style) == text(shared), (
        f"{path.name}: the cell after the setup must be chapter 1's plot-style cell, verbatim"
    )
    assert style["metadata"].get("tags") == ["hide-input"] and (
        style["metadata"].get("mystnb") == shared["metadata"].get("mystnb")
    ), f"{path.name}: the plot-style cell must be folded, as in chapter 1"


def test_the_shared_style_cell_is_folded_and_sets_the_plot_style():
    style = _shared_style_cell()
    assert style["metadata"].get("tags") == ["hide-input"], "chapter 1's plot-style cell must be folded"
    assert "plt.rcParams.update" in text(style) and "def glue(" in text(style), (
        "the shared cell holds the plot defaults and the glue fallback for plain Jupyter"
    )


@nb_params
def test_no_legacy_seeding(path):
    legacy = re.compile(r"np\.random\.seed|RandomState|np\.random\.(rand|randn|normal|uniform|choice)\(")
    offenders = [text(c) for c in code_cells(load(path)) if legacy.search(text(c))]
    assert not offenders, f"{path.name}: use rng = np.random.default_rng(SEED), not {offenders[:1]}"


EXERCISE = re.compile(r"```\{exercise\}.*?\n:label:\s*(\S+)", re.S)
SOLUTION = re.compile(r"```\{solution\}\s+(\S+)")


@chapter_params
def test_every_exercise_has_a_solution(path):
    nb = load(path)
    markdown = "\n".join(text(c) for c in markdown_cells(nb))
    labels = EXERCISE.findall(markdown)
    assert len(labels) >= 3, f"{path.name}: at least three exercises, found {labels}"
    written = set(SOLUTION.findall(markdown))
    coded = {
        c["metadata"]["nbgrader"]["grade_id"].removesuffix("-solution")
        for c in code_cells(nb)
        if c["metadata"].get("nbgrader", {}).get("solution")
    }
    unsolved = [label for label in labels if label not in written | coded]
    assert not unsolved, f"{path.name}: exercises without a solution: {unsolved}"
    assert coded, f"{path.name}: needs at least one autograded coding exercise"


@chapter_params
def test_autograded_exercises_are_well_formed(path):
    nb = load(path)
    ids = []
    for cell in code_cells(nb):
        meta = cell["metadata"].get("nbgrader")
        if not meta:
            continue
        ids.append(meta["grade_id"])
        body = text(cell)
        if meta.get("solution"):
            assert "### BEGIN SOLUTION" in body and "### END SOLUTION" in body, meta["grade_id"]
        if meta.get("grade"):
            assert meta.get("locked") and meta.get("points", 0) > 0, meta["grade_id"]
            assert "assert" in body, f"{meta['grade_id']}: a test cell must assert something"
            if "BEGIN HIDDEN TESTS" in body:
                assert "remove-cell" in cell["metadata"].get("tags", []), (
                    f"{meta['grade_id']}: hidden tests must not show in the rendered book"
                )
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade_id in {ids}"
    for grade_id in ids:
        # A question's answer cell, then its graded parts: `-tests`, `-tests-<part>`, `-hidden-tests…`
        pattern = r"ex-[a-z0-9]+-[a-z0-9-]+?-(solution|(hidden-)?tests(-[a-z0-9]+)?)"
        assert re.fullmatch(pattern, grade_id), grade_id


def _names(source):
    """(names a cell defines anywhere in it, names it reads)."""
    tree = ast.parse(source)
    defined, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else defined).add(node.id)
    return defined, read


@chapter_params
def test_test_cells_are_self_contained(path):
    """The grader judges answers in a clean process that runs only the setup cell and the test
    cells (tools/judge.py): a test cell may read the setup's names (not its `rng`, whose state
    depends on every cell before), its own, and the names the answer cells define."""
    cells = code_cells(load(path))
    setup = _names(text(cells[0]))[0] - {"rng"}
    answers = set()
    for cell in cells:
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            answers |= names_defined(text(cell))  # top level: what the recorder can see
    for cell in cells:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade"):
            own, read = _names(text(cell))
            outside = read - own - setup - answers - set(dir(builtins))
            assert not outside, f"{meta['grade_id']} reads {sorted(outside)} from elsewhere in the notebook"


@chapter_params
def test_every_figure_has_caption_name_and_alt_text(path):
    for cell in code_cells(load(path)):
        # a figure from pyplot, or one built outside it (Figure(...), as an animation may be)
        if not re.search(r"plt\.(subplots|figure)\b|\bFigure\(", text(cell)):
            continue
        mystnb = cell["metadata"].get("mystnb", {})
        figure, image = mystnb.get("figure", {}), mystnb.get("image", {})
        snippet = text(cell)[:60]
        assert figure.get("caption") and figure.get("name"), f"{path.name}: no caption/name: {snippet}"
        assert image.get("alt"), f"{path.name}: no alt text: {snippet}"
        assert ".set_title(" not in text(cell), f"{path.name}: use the caption, not set_title"


@chapter_params
def test_chapter_sections(path):
    headings = re.findall(r"^## (.+)$", "\n".join(text(c) for c in markdown_cells(load(path))), re.M)
    for required in ("Setup", "Key takeaways", "Exercises", "Further reading"):
        assert required in headings, f"{path.name}: missing '## {required}'"
    assert headings[0] == "Setup" and headings[-1] == "Further reading", headings


def test_glue_keys_are_defined_where_used():
    """Every {glue:...} role names a key the notebook glues (built keys count by their prefix)."""
    for path in NOTEBOOKS:
        nb = load(path)
        code = "\n".join(text(c) for c in code_cells(nb))
        literal = set(re.findall(r"glue\(\s*[\"']([^\"']+)[\"']", code))
        # Keys glued in a loop over a dict or list of names: string literals in cells that glue.
        gluing = [text(c) for c in code_cells(nb) if "glue(" in text(c)]
        literal |= {k for cell in gluing for k in re.findall(r"[\"']([a-z]\w+)[\"']", cell)}
        prefixes = set(re.findall(r"glue\(\s*f[\"']([^{\"']*)\{", code))
        prefixes |= set(re.findall(r"glue\(\s*[\"']([^\"']+)[\"']\s*\+", code))
        used = set(re.findall(r"\{glue:[a-z]+\}`([^`:]+)", "\n".join(text(c) for c in markdown_cells(nb))))
        unknown = sorted(k for k in used - literal if not any(k.startswith(p) for p in prefixes if p))
        assert not unknown, f"{path.name}: glue keys used but never glued: {unknown}"


SAFE_COLOURS = re.compile(r"C[0-6]|0?\.\d+|k|black|white|gr[ae]y|none|#0072B2|#D55E00|#009E73|#CC79A7"
                          r"|#E69F00|#56B4E9|#000000", re.I)
COLOUR_ARGUMENT = re.compile(r"\b(?:color|colors|facecolor|edgecolor|c)\s*=\s*[\"']([^\"'{]+)[\"']")
SAFE_COLORMAPS = {"viridis", "cividis", "magma", "inferno", "plasma", "PuOr", "PuOr_r", "BrBG", "BrBG_r"}


@chapter_params
def test_colours_are_colour_blind_safe(path):
    """Colours come from the Okabe–Ito cycle (C0–C6) or greys; colormaps are perceptually uniform."""
    for cell in code_cells(load(path)):
        source = text(cell)
        for value in COLOUR_ARGUMENT.findall(source):
            assert SAFE_COLOURS.fullmatch(value), f"{path.name}: colour {value!r} is outside the safe palette"
        for name in re.findall(r"(?:cmap\s*=\s*|get_cmap\()\s*[\"']([^\"']+)[\"']", source):
            assert name in SAFE_COLORMAPS, f"{path.name}: colormap {name!r} is not colour-blind safe"


@nb_params
def test_every_check_says_in_plain_words_what_it_checks(path):
    """Each assert of a claim check carries a literal message of a few words: the claims ledger
    lists it, and a failing run shows it. Claim checks are folded under "Check" on the page;
    bookkeeping checks (tag `bookkeeping`) test the page itself and stay hidden."""
    import book_html

    nb = load(path)
    checks = book_html.check_cells(nb)
    assert checks, f"{path.name}: no claim checks"
    for cell, asserts in checks:
        for node, message in asserts:
            words = re.findall(r"[A-Za-z]{2,}", message or "")
            assert len(words) >= 3, f"{path.name}: `{ast.unparse(node)[:120]}` needs a message in plain words"
        tags = cell["metadata"].get("tags", [])
        shown = "remove-cell" not in tags and "remove-input" not in tags
        assert shown, f"{path.name}: a claim check must be on the page (folded): {text(cell)[:120]}"
        if "hide-input" in tags:
            prompt = cell["metadata"].get("mystnb", {})
            assert prompt.get("code_prompt_show") == "Check", f"{path.name}: a folded check is labelled Check"
    for cell in code_cells(nb):
        if "bookkeeping" in cell["metadata"].get("tags", []):
            assert "remove-cell" in cell["metadata"]["tags"], f"{path.name}: bookkeeping checks stay hidden"


@nb_params
def test_code_lines_fit_the_page(path):
    """Code lines of at most 88 characters fit the book's code column at 1280 px (book.css)."""
    for cell in code_cells(load(path)):
        long = [line for line in text(cell).splitlines() if len(line) > 88]
        assert not long, f"{path.name}: lines longer than 88 characters: {long[:2]}"


def lines_read_as_list_items(markdown):
    """Lines of `markdown` that continue inline maths ($...$ wrapped over lines) but start with
    "- ", "+ ", "* " or "1. ": MyST reads such a line as a list item, and the maths breaks."""
    found, inline, display = [], False, False
    for line in markdown.splitlines():
        if line.strip() == "$$":
            display = not display
            continue
        if display:
            continue
        if inline and re.match(r"\s*([-+*]|\d+[.)])\s", line):
            found.append(line.strip())
        bare = re.sub(r"`[^`]*`", "", line.replace(r"\$", "").replace("$$", ""))
        inline ^= bare.count("$") % 2 == 1
    return found


def test_list_item_detector_sees_a_wrapped_sign():
    assert lines_read_as_list_items("a $x\n+ y$ b") == ["+ y$ b"]
    assert lines_read_as_list_items("a $x + y$\n- item") == []
    assert lines_read_as_list_items("$$\nx\n+ y\n$$") == []


@nb_params
def test_no_maths_line_reads_as_a_list_item(path):
    """Wrap inline maths so that no line starts with a sign: see lines_read_as_list_items."""
    for cell in markdown_cells(load(path)):
        found = lines_read_as_list_items(text(cell))
        assert not found, f"{path.name}: rewrap so these lines do not start a list: {found}"


_TOP_LEVEL_COMMA = re.compile(r",\s*(?![^{(]*[})])")  # a comma outside braces and parentheses


def _defined_symbols(cell):
    """The symbols a notation row defines: each `$...$` of its first column, split at commas outside
    braces and parentheses, each taken up to its first `=`, `\\in`, `\\ge`, `>` or `\\le` (the definition)."""
    symbols = []
    for maths in re.findall(r"\$([^$]+)\$", cell):
        for part in _TOP_LEVEL_COMMA.split(maths):
            symbol = re.split(r"\s*(?:=|\\in\b|\\ge\b|>|\\le\b)\s*", part.strip())[0].strip()
            if symbol:
                symbols.append(symbol)
    return symbols


def _book_wide_rows(page):
    """{symbol: its rows} for every symbol the book-wide tables (data and model, norms and penalties)
    define in a row's first column."""
    rows = {}
    for title in ("Data and model", "Norms and penalties"):
        section = page.split(f"\n## {title}\n", 1)[1]
        table = section[section.index("| symbol |"):].split("\n\n", 1)[0]  # the section's first table
        for line in table.splitlines():
            if not line.startswith(("| symbol", "|---")):
                for symbol in _defined_symbols(line.split(" | ")[0][2:]):
                    rows.setdefault(symbol, []).append(line[:60])
    assert len(rows) > 3, "the notation tables were not read"
    return rows


def _symbols_defined_twice(page):
    """{symbol: its rows} for the symbols that two rows of the book-wide tables define."""
    return {symbol: where for symbol, where in _book_wide_rows(page).items() if len(where) > 1}


def test_notation_defines_each_symbol_once():
    """The book-wide tables of the notation appendix (data and model, norms and penalties) give each
    symbol one row: a second row for it would be a second meaning."""
    twice = _symbols_defined_twice((BOOK / "notation.md").read_text(encoding="utf-8"))
    assert not twice, f"symbols defined in more than one row of the notation appendix: {twice}"


def test_duplicate_symbol_detector_sees_a_second_row():
    defined = _defined_symbols(r"$\lambda \ge 0$, $\tilde X = X - \mathbf{1}\bar x^\top$")
    assert defined == ["\\lambda", "\\tilde X"]
    table = "| symbol | meaning |\n|---|---|\n| $n$ | samples |\n| $p$, $q$ | features |\n| $w$ | weights |\n"
    page = f"\n## Data and model\n\n{table}\n## Norms and penalties\n\n{table.replace('$p$', '$t$')}"
    assert set(_symbols_defined_twice(page)) == {"n", "q", "w"}


_DECORATION = re.compile(r"\\(?:hat|bar|tilde|check|dot|vec|widehat|widetilde|overline|underline"
                         r"|mathbf|boldsymbol|bm|pmb|mathsf)(?![A-Za-z])\s*")
_GROUP = r"\{(?:[^{}]|\{[^{}]*\})*\}"
# A letter (or a named operator: \operatorname{sd}, \mathrm{s1}, \mathcal L, <w>), with primes,
# subscripts and superscripts.
_SYMBOL = re.compile(r"(\\(?:operatorname|mathrm)\{[A-Za-z0-9]+\}|\\mathcal\s*[A-Za-z]"
                     r"|\\langle\s*\w\s*\\rangle|\\[A-Za-z]+|[A-Za-z])'*"
                     r"(?:\s*[_^]\s*(?:" + _GROUP + r"|\\[A-Za-z]+|[A-Za-z0-9+-]))*")
_ARGUMENT = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)$")  # a trailing (x) or (u, c)


def _undecorated(symbol):
    """symbol without its decorations (hat, bar, tilde, bold, sans-serif, underline, ...) and
    set braces: `\\bar{s}` -> `s`, `\\mathbf d` -> `d`, `\\boldsymbol\\beta_1` -> `\\beta_1`,
    `\\{t_j\\}` -> `t_j`."""
    symbol = symbol.strip()
    while True:
        before = symbol
        if symbol.startswith(r"\{") and symbol.endswith(r"\}"):
            symbol = symbol[2:-2].strip()
        decoration = _DECORATION.match(symbol)
        if decoration:
            symbol = symbol[decoration.end():]
            group = re.match(_GROUP, symbol)
            if group:
                symbol = group.group()[1:-1].strip() + symbol[group.end():]
        if symbol == before:
            return symbol


def _base(symbol):
    """The letter a symbol is written with: `\\hat w_j` -> `w`, `\\kappa(\\lambda)` -> `\\kappa`."""
    match = _SYMBOL.fullmatch(_undecorated(_ARGUMENT.sub("", symbol.strip())))
    return match.group(1) if match else None


def _split_outside_maths(text, separator):
    """text split at each separator that is not inside `$...$`."""
    parts, current, maths = [], "", False
    i = 0
    while i < len(text):
        if text[i] == "$":
            maths = not maths
        if not maths and text.startswith(separator, i):
            parts.append(current)
            current, i = "", i + len(separator)
            continue
        current += text[i]
        i += 1
    return parts + [current]


_ENTRY_HEAD = re.compile(r"(?:ch\. [^:$]+|the scalings table below): ")


def _index_entry_symbols(entry):
    """The symbols an entry of the index of local meanings defines: `ch. N §s: $x$ and $x'$, what
    they are` gives x and x', read as `_defined_symbols` reads a book-wide row's first column; None
    if the entry lacks its `ch. N: ` head."""
    head = _ENTRY_HEAD.match(entry)
    if not head:
        return None
    return _defined_symbols(_split_outside_maths(entry[head.end():], ", ")[0])


def _local_index_problems(page):
    """What breaks "one meaning per symbol" in the notation appendix's index of local meanings (the
    table headed `| symbol | local meanings |`), whose rows each give one letter and, entry by entry
    (`ch. N §s: $symbol$, meaning`), every meaning that chapters give it locally: a letter that the
    book-wide tables (data and model, norms and penalties) define, in any form (decorated, bold, with
    a subscript); a letter with two rows; an entry without its chapter; and an entry that defines a
    symbol of another letter."""
    book_wide = {_base(symbol) for symbol in _book_wide_rows(page)} - {None}
    index = page.split("| symbol | local meanings |", 1)[1].split("\n\n", 1)[0]
    problems, seen = [], set()
    for line in index.splitlines()[2:]:
        key, meanings = line[2:].rstrip(" |").split(" | ", 1)
        letter = _base(key.strip("$ ")) or key.strip("$ ")
        if letter in book_wide:
            problems.append(f"{key}: the book-wide tables give this letter its one meaning")
        if letter in seen:
            problems.append(f"{key}: a second row")
        seen.add(letter)
        for entry in _split_outside_maths(meanings, "; "):
            symbols = _index_entry_symbols(entry)
            if not symbols:
                problems.append(f"{key}: an entry without `ch. N: $symbol$`: {entry[:50]!r}")
                continue
            others = [symbol for symbol in symbols if (_base(symbol) or symbol) != letter]
            if others:
                problems.append(f"{key}: an entry defines {others}")
    assert len(seen) > 3, "the index of local meanings was not read"
    return problems


def test_no_letter_has_two_rows_or_a_local_meaning_besides_its_book_wide_one():
    """Every letter means one thing in the book-wide tables; a letter those tables do not define may
    mean different things in different chapters, and the appendix lists them in the letter's one row
    of the index of local meanings. So no chapter gives a book-wide letter (A, D, H, S, V, k, p, w,
    alpha, delta, eta, nu, pi, rho, sigma, tau, ...) a meaning of its own."""
    problems = _local_index_problems((BOOK / "notation.md").read_text(encoding="utf-8"))
    assert not problems, "notation appendix:\n" + "\n".join(problems)


def test_local_index_detector_sees_each_problem():
    assert [_base(s) for s in (r"\hat w_j", r"\kappa(\lambda)", r"\mathbf d", r"\{t_j\}", "x + y")] == [
        "w", r"\kappa", "d", "t", None]
    assert _index_entry_symbols(r"ch. 2 §3: $\theta_1$ and $\theta_2$, copies; see $w$") == [
        r"\theta_1", r"\theta_2"]
    assert _index_entry_symbols(r"ch. 4: $\xi = \psi^2$, a variance") == [r"\xi"]
    assert _index_entry_symbols(r"a variance $\xi$") is None
    header = "| symbol | meaning |\n|---|---|\n"
    book_wide = (f"\n## Data and model\n\n{header}| $n$ | samples |\n| $p$ | features |\n"
                 f"| $\\eta > 0$ | a rate |\n\n## Norms and penalties\n\n{header}"
                 "| $S_\\lambda(z)$ | soft-thresholding |\n\n")
    index = ("| symbol | local meanings |\n|---|---|\n"
             "| $\\kappa$ | ch. 2: $\\kappa(\\lambda)$, a condition number of $G$; "
             "ch. 6: $\\kappa_j > 0$, a factor |\n"
             "| $\\eta$ | ch. 4: $\\eta_j$, a direction |\n"
             "| $\\hat S$ | ch. 1: $S$, a smoother |\n"
             "| $\\kappa$ | ch. 10: $\\kappa$, a distance |\n"
             "| $\\psi$ | ch. 4: $\\psi$, a scale; ch. 5: $\\xi = \\psi^2$, its square; a buffer |\n"
             "| $\\operatorname{corr}$ | ch. 2: $\\operatorname{corr}$, a correlation of $x_1$ and $x_2$ |\n")
    problems = _local_index_problems(book_wide + index)
    assert problems == [
        "$\\eta$: the book-wide tables give this letter its one meaning",
        "$\\hat S$: the book-wide tables give this letter its one meaning",
        "$\\kappa$: a second row",
        "$\\psi$: an entry defines ['\\\\xi']",
        "$\\psi$: an entry without `ch. N: $symbol$`: 'a buffer'"], problems


def introduction(path):
    """A chapter's introduction: its markdown cells before the first code cell."""
    cells = load(path)["cells"]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    return "\n\n".join(text(c) for c in cells[:first_code] if c["cell_type"] == "markdown")


TIME_SENTENCE = re.compile(r"\*\*Time\.\*\* About (\d+) minutes"
                           r"(?: for the core path and (\d+) for the whole chapter)?")


@chapter_params
def test_chapter_states_its_reading_time(path):
    """The introduction states the reading time that tools/reading_time.py estimates (core path:
    the sections whose heading does not end in "(going deeper)"), to within 5 minutes or 10 %."""
    import reading_time

    whole, core, _ = reading_time.chapter_counts(path)
    found = TIME_SENTENCE.search(introduction(path))
    assert found, f"{path.name}: the introduction must state '**Time.** About N minutes ...'"
    has_deeper = round(core.minutes) != round(whole.minutes)
    assert bool(found.group(2)) == has_deeper, (
        f"{path.name}: state the core path's time and the whole chapter's exactly when some section "
        "is marked (going deeper)"
    )
    pairs = [(int(found.group(1)), core.minutes)]
    if has_deeper:
        pairs.append((int(found.group(2)), whole.minutes))
    for stated, computed in pairs:
        assert abs(stated - computed) <= max(5, 0.1 * computed), (
            f"{path.name}: states {stated} minutes, the estimate is {computed:.0f}: write about "
            f"{5 * round(computed / 5)}"
        )


PREDICT = "```{admonition} Predict first:"


@chapter_params
def test_chapter_asks_to_predict_before_it_runs(path):
    """At least two "Predict first" questions per chapter, each with its answer folded and an
    experiment (a code cell) after it in the same section."""
    cells = load(path)["cells"]
    boxes = [i for i, c in enumerate(cells)
             if c["cell_type"] == "markdown" and text(c).lstrip().startswith(PREDICT)]
    assert len(boxes) >= 2, f"{path.name}: {len(boxes)} predict-first questions (at least 2)"
    for i in boxes:
        box = text(cells[i])
        assert re.search(r"^:class: dropdown\b", box, re.M), f"{path.name}: fold the answer:\n{box[:200]}"
        assert box.splitlines()[0].rstrip().endswith("?"), f"{path.name}: the title must be the question"
        later = cells[i + 1:]
        headings = [j for j, c in enumerate(later)
                    if c["cell_type"] == "markdown" and re.search(r"^## ", text(c), re.M)]
        next_heading = headings[0] if headings else len(later)
        assert any(c["cell_type"] == "code" for c in later[:next_heading]), (
            f"{path.name}: no experiment follows the question in its section:\n{box[:200]}")


def test_references_to_going_deeper_sections_name_them_plainly():
    """A bare {ref}`label` prints the target's heading: for a going-deeper section that would drag
    the "(going deeper)" mark into the sentence, so such references give their own text."""
    import nbformat
    import reading_time  # finds the sections and their labels as the reading-time estimate does

    marked = {label for path in CHAPTERS
              for label, heading, _ in reading_time.sections(nbformat.read(path, as_version=4))
              if heading and heading.endswith(reading_time.GOING_DEEPER)}
    assert marked, "no going-deeper section found"
    sources = [(p.name, "\n".join(text(c) for c in load(p)["cells"] if c["cell_type"] == "markdown"))
               for p in CHAPTERS]
    sources += [(p.name, p.read_text(encoding="utf-8")) for p in sorted(BOOK.glob("*.md"))]
    bare = [(name, label) for name, source in sources
            for label in re.findall(r"\{ref\}`([^`<>]+)`", source) if label in marked]
    assert not bare, f"bare references to going-deeper sections (give them text): {bare}"


@chapter_params
def test_chapter_points_to_the_one_table_of_scalings(path):
    """scikit-learn's `alpha` and `C` are mapped to the book's lambda in one table (the notation
    appendix's, label notation-scalings); each introduction points there instead of restating it."""
    assert "(notation-scalings)=" in (BOOK / "notation.md").read_text(encoding="utf-8")
    assert re.search(r"\{ref\}`[^`]*<notation-scalings>`", introduction(path)), (
        f"{path.name}: the introduction must point to {{ref}}`... <notation-scalings>`")
