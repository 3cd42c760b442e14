"""The book's MyST Markdown written as plain Markdown, for student notebooks opened in JupyterLab or
Colab, which render CommonMark and `$` maths but none of Sphinx's roles and directives.

What the book's extensions would render is written out: glued values (myst-nb), exercises
(sphinx-exercise), admonitions, citations (sphinxcontrib-bibtex, author-year), cross-references,
labelled equations and links to other pages. Links point to the published book when `_config.yml`
sets `html.baseurl`; otherwise a reference to another page is written as text naming that page,
never as a link to a file the student does not have. A role or directive not listed here raises
UnknownMyST, naming it: a new construct in a chapter fails `make student` instead of leaking.
"""

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from book_toc import ROOT, toc_entries
from course import UsageError

ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
               "warning": "Warning", "caution": "Caution", "attention": "Attention", "danger": "Danger",
               "error": "Error", "seealso": "See also"}
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[^}\s]+)\}[ \t]*(?P<argument>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")
TARGET_LINE = re.compile(r"^\((?P<label>[^)\s]+)\)=[ \t]*$")
LABELLED_MATH_END = re.compile(r"^\$\$[ \t]*\((?P<label>[^)\s]+)\)[ \t]*$")
ROLE = re.compile(r"\{(?P<name>[^}\s`]+)\}`(?P<content>[^`]*)`")
LINK = re.compile(r"(?P<image>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<label>[^<>]+)>$", re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
# Under each exercise's heading: how it is graded.
WRITTEN_NOTE = "*Write your answer in the markdown cell below.*"
VISIBLE_CHECKS_NOTE = ("*Autograded: write your answer in the code cell below; the checks under it are "
                       "all the checks that grade it.*")
HIDDEN_CHECKS_NOTE = ("*Autograded: write your answer in the code cell below. The checks under it are "
                      "visible checks; hidden checks (the empty test cells) also run when your notebook "
                      "is graded.*")


class UnknownMyST(UsageError):
    """A role, directive, label or link this converter cannot write as plain Markdown (reported in
    one line by `coursework.py student`, like any other bad input)."""


@dataclass
class Target:
    """What a label names: where it is and what a reference to it shows."""

    page: str           # stem of the page that defines it
    title: str          # the text a {ref} shows
    anchor: str         # the HTML id in the published book
    kind: str = ""      # "Exercise", "Equation" or "Figure": what a {numref} calls it
    number: int = 0     # its number, for {numref} and {eq}


@dataclass
class Book:
    """Everything outside a chapter that its markdown refers to."""

    titles: dict        # page stem -> page title (its H1)
    targets: dict       # label -> Target
    bibliography: object  # pybtex BibliographyData of book/references.bib
    baseurl: str = ""   # the published book, from _config.yml's html.baseurl ("" when unpublished)


@dataclass
class Question:
    """How an exercise is graded, as its heading states it."""

    points: float
    autograded: bool
    hidden: bool = False


@dataclass
class Page:
    """One notebook being converted: its glued values and questions, and the sources it cites."""

    stem: str
    glued: dict                                   # key -> mime bundle (glue_values.py)
    questions: dict = field(default_factory=dict)  # exercise label -> Question
    cited: list = field(default_factory=list)      # bibliography keys, in order of first citation
    nearby: set = field(default_factory=set)       # pages the cell being converted links to


# ---------------------------------------------------------------------------------------------
# Reading the book: labels, page titles, the bibliography, the published address


def html_id(label):
    """The id Sphinx gives a label (docutils' make_id, for the labels a book uses)."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def page_markdown(path):
    """(markdown text, [(figure name, caption)]) of a book page, .md or .ipynb."""
    import nbformat

    if path.suffix == ".md":
        return path.read_text(encoding="utf-8"), []
    nb = nbformat.read(path, as_version=4)
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    figures = [(c.metadata["mystnb"]["figure"]["name"], c.metadata["mystnb"]["figure"].get("caption", ""))
               for c in nb.cells if c.metadata.get("mystnb", {}).get("figure", {}).get("name")]
    return text, figures


def option(lines, key):
    """The value of a directive's `:key:` option, from the option lines that follow its fence."""
    for line in lines:
        found = OPTION.match(line.strip())
        if not found:
            return None
        if found.group("key") == key:
            return found.group("value").strip()
    return None


def equation_label(line, following):
    """The label of the equation this line ends (`$$ (label)`) or opens (a labelled {math})."""
    end = LABELLED_MATH_END.match(line.strip())
    if end:
        return end.group("label")
    fence = FENCE.match(line.strip())
    if fence and fence.group("name") == "math":
        return option(following, "label")
    return None


def page_targets(stem, text, figures, counters):
    """{label: Target} for the sections, exercises, labelled equations and figures of one page.
    Equations are numbered per page; exercises and figures through the whole book, in reading
    order, as Sphinx numbers them in a book without section numbers (`counters` carries on)."""
    targets, lines = {}, text.splitlines()
    equations = 0
    for i, line in enumerate(lines):
        section = TARGET_LINE.match(line.strip())
        if section:
            following = next((x for x in lines[i + 1:] if x.strip()), "")
            heading = HEADING.match(following)
            label = section.group("label")
            targets[label] = Target(stem, heading.group("title") if heading else "", html_id(label))
        fence = FENCE.match(line.strip())
        if fence and fence.group("name") == "exercise":
            counters["Exercise"] += 1
            number, label = counters["Exercise"], option(lines[i + 1:], "label")
            if label:
                targets[label] = Target(stem, f"Exercise {number}", html_id(label), "Exercise", number)
        label = equation_label(line, lines[i + 1:])
        if label:
            equations += 1
            targets[label] = Target(stem, f"({equations})", f"equation-{html_id(label)}", "Equation",
                                    equations)
    for name, caption in figures:
        counters["Figure"] += 1
        number = counters["Figure"]
        targets[name] = Target(stem, caption or f"Figure {number}", html_id(name), "Figure", number)
    return targets


def read_book(root=ROOT):
    """The labels, titles and bibliography of every page of the book, in reading order (_toc.yml),
    and its published address."""
    import yaml
    from pybtex.database import parse_file

    titles, targets, counters = {}, {}, {"Exercise": 0, "Figure": 0}
    for entry, toc_title in toc_entries(root):
        path = next(p for p in (root / f"{entry}.ipynb", root / f"{entry}.md") if p.exists())
        text, figures = page_markdown(path)
        h1 = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), path.stem)
        titles[path.stem] = toc_title or h1
        targets.update(page_targets(path.stem, text, figures, counters))
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    baseurl = ((config.get("html") or {}).get("baseurl") or "").rstrip("/")
    return Book(titles, targets, parse_file(str(root / "book" / "references.bib")), baseurl)


def page_url(book, stem, anchor=""):
    """The published address of a page of the book (and of an anchor on it)."""
    return f"{book.baseurl}/book/{stem}.html" + (f"#{anchor}" if anchor else "")


# ---------------------------------------------------------------------------------------------
# Blocks: directives, target lines and labelled equations


def split_directive(lines, start):
    """(name, argument, options, body lines, index after the closing fence) of the directive that
    opens at lines[start]. The closing fence is the first line of only the same fence character,
    at least as long (an outer directive uses a longer fence than the ones it holds)."""
    opening = FENCE.match(lines[start].strip())
    fence = opening.group("fence")
    closing = re.compile(re.escape(fence[0]) + f"{{{len(fence)},}}")
    end = next((j for j in range(start + 1, len(lines)) if closing.fullmatch(lines[j].strip())), None)
    if end is None:
        raise UnknownMyST(f"the {{{opening.group('name')}}} directive at {lines[start]!r} is never closed")
    body, options = lines[start + 1:end], {}
    while body and OPTION.match(body[0].strip()):
        found = OPTION.match(body[0].strip())
        options[found.group("key")] = found.group("value").strip()
        body = body[1:]
    while body and not body[0].strip():
        body = body[1:]
    return opening.group("name"), opening.group("argument").strip(), options, body, end + 1


def points_text(points):
    """'1 point', '3 points', '2.5 points'."""
    return f"{points:g} point" + ("" if points == 1 else "s")


def exercise(argument, options, body, page, book):
    """An exercise as a heading with its number, title and points, a line on how it is graded,
    then its text."""
    label = options.get("label", "")
    heading = book.targets[label].title if label in book.targets else "Exercise"
    if argument:
        heading += f": {argument}"
    question = page.questions.get(label)
    if question is None:
        return [f"### {heading}", "", *body]
    if not question.autograded:
        heading, note = f"{heading} ({points_text(question.points)}, graded by hand)", WRITTEN_NOTE
    else:
        heading, note = f"{heading} ({points_text(question.points)})", (
            HIDDEN_CHECKS_NOTE if question.hidden else VISIBLE_CHECKS_NOTE)
    return [f"### {heading}", "", note, "", *body]


def admonition(name, argument, body, options=None):
    """An admonition as a blockquote under a bold title; a folded one (`:class: dropdown`, such as
    a "Predict first" question whose answer is hidden) as an HTML `<details>` block, which Jupyter
    and Colab show folded under its title."""
    title = argument if name == "admonition" else ADMONITIONS[name]
    if "dropdown" in (options or {}).get("class", "").replace(",", " ").split():
        return ["<details>", f"<summary><b>{title or 'Show'}</b></summary>", "", *body, "", "</details>"]
    quoted = [f"> {line}" if line.strip() else ">" for line in body]
    return [f"> **{title}**" if title else ">", ">", *quoted]


def math_block(options, body, book):
    """A {math} directive as a `$$` block, numbered with \\tag when it has a label."""
    label = options.get("label")
    tag = [rf"\tag{{{book.targets[label].number}}}"] if label in book.targets else []
    return ["$$", *body, *tag, "$$"]


def directive(name, argument, options, body, page, book):
    """The plain Markdown lines for one directive (its body already converted)."""
    if name == "exercise":
        return exercise(argument, options, body, page, book)
    if name in ADMONITIONS or name == "admonition":
        return admonition(name, argument, body, options)
    if name == "math":
        return math_block(options, body, book)
    if name == "glue:figure":  # the figure itself appears when its cell runs: keep the caption
        return body
    raise UnknownMyST(f"the {{{name}}} directive has no plain-Markdown form (plain_markdown.py)")


def convert_blocks(lines, page, book):
    """The lines with every directive, `(label)=` target line and labelled `$$` block rewritten."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line.strip()):
            name, argument, options, body, i = split_directive(lines, i)
            out += directive(name, argument, options, convert_blocks(body, page, book), page, book)
            continue
        math_end = LABELLED_MATH_END.match(line.strip())
        if math_end:
            label = math_end.group("label")
            if label not in book.targets:
                raise UnknownMyST(f"equation label {label!r} is not known")
            out += [rf"\tag{{{book.targets[label].number}}}", "$$"]
        elif not TARGET_LINE.match(line.strip()):
            out.append(line)
        i += 1
    return out


# ---------------------------------------------------------------------------------------------
# Inline: roles and links


def glued(name, content, page):
    """A glued value as the book prints it: myst-nb's own formatting of its text/plain form
    ({glue:text}`key:format`), its Markdown ({glue:md}), or the best of both ({glue})."""
    from myst_nb.core.variables import format_plain_text

    key, spec = content.rsplit(":", 1) if name == "glue:text" and ":" in content else (content, "s")
    if key not in page.glued:
        raise UnknownMyST(f"no value is glued under {key!r}")
    bundle = page.glued[key]
    if name == "glue:md" and "text/markdown" not in bundle:
        raise UnknownMyST(f"{{glue:md}}`{key}` needs a value with a Markdown form")
    if name != "glue:text":
        return bundle.get("text/markdown", bundle["text/plain"])
    try:
        return format_plain_text(bundle["text/plain"], spec)
    except ValueError as exc:  # myst-nb fails the build on it too
        raise UnknownMyST(f"{{glue:text}}`{content}` cannot format {bundle['text/plain']!r} ({exc}): "
                          "glue plain Python numbers") from None


@functools.cache
def text_backend():
    """pybtex's plain-text backend, looked up once: `render_as("text")` looks it up on every call, by
    scanning every installed package's entry points (most of `make student`'s time, before)."""
    from pybtex.plugin import find_plugin

    return find_plugin("pybtex.backends", "text")()


def authors(entry):
    """'Hoerl', 'Hoerl and Kennard' or 'Efron et al.', as sphinxcontrib-bibtex's author-year style."""
    from pybtex.richtext import Text

    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [Text.from_latex(" ".join(p.prelast_names + p.last_names)).render(text_backend()) for p in people]
    if len(names) > 2:
        return f"{names[0]} et al."
    return " and ".join(names) or entry.fields.get("title", "Anonymous")


def citation(keys, textual, page, book):
    """Author-year citations of comma-separated keys: textual 'Hoerl and Kennard (1970)', else
    parenthetical '(Hoerl and Kennard, 1970; Tibshirani, 1996)'."""
    shown = []
    for key in (k.strip() for k in keys.split(",")):
        if key not in book.bibliography.entries:
            raise UnknownMyST(f"{key!r} is cited but not in book/references.bib")
        if key not in page.cited:
            page.cited.append(key)
        entry = book.bibliography.entries[key]
        shown.append((authors(entry), entry.fields.get("year", "n.d.")))
    if textual:
        return ", ".join(f"{name} ({year})" for name, year in shown)
    return "(" + "; ".join(f"{name}, {year}" for name, year in shown) + ")"


def shown_text(label, text, target, numbered):
    """What a reference shows: its own text, else what the label names ("Exercise 3", "(2)", a page
    or section title, or "Figure 4" for a {numref})."""
    if text and numbered:
        return text.replace("{number}", str(target.number)).replace("%s", str(target.number))
    if text:
        return text
    if numbered and target.number:
        return f"{target.kind} {target.number}"
    if not target.title:
        raise UnknownMyST(f"a reference to {label!r} needs its text: the label is not on a heading")
    return target.title


def reference(label, text, page, book, numbered=False):
    """A cross-reference: a link into the published book; else text, with the name of the page it
    is on when that is another page the cell does not already link to."""
    if label in book.titles:  # a whole page ({doc}, or a link to a page)
        target = Target(label, book.titles[label], "")
    elif label in book.targets:
        target = book.targets[label]
    else:
        raise UnknownMyST(f"no label {label!r} in the book")
    shown = shown_text(label, text, target, numbered)
    if book.baseurl:
        return f"[{shown}]({page_url(book, target.page, target.anchor)})"
    title = book.titles[target.page]
    if label in book.titles:  # a link to a page: name it when the link text does not
        return shown if shown.lower() in title.lower() else f"{shown} (*{title}*)"
    if not text and not target.kind:
        shown = f"“{shown}”"  # a section title inside a sentence: quoted, as it is no longer a link
    if target.page == page.stem or target.page in page.nearby:
        return shown
    return f"{shown} (in *{title}*)"


def role(name, content, page, book):
    """The plain Markdown for one role."""
    explicit = EXPLICIT.match(content)
    text, label = (explicit.group("text"), explicit.group("label")) if explicit else ("", content)
    if name in ("glue", "glue:any", "glue:text", "glue:md"):
        return glued(name, content, page)
    if name in ("cite", "cite:p", "cite:t"):
        return citation(content, name == "cite:t", page, book)
    if name == "ref":
        return reference(label.strip(), text, page, book)
    if name == "doc":  # a page, by its path without extension
        return reference(Path(label.strip()).stem, text, page, book)
    if name == "numref":
        return reference(label.strip(), text, page, book, numbered=True)
    if name == "eq":
        return reference(content.strip(), "", page, book)
    if name == "math":
        return f"${content}$"
    raise UnknownMyST(f"the {{{name}}} role has no plain-Markdown form (plain_markdown.py)")


def link(text, target, page, book, image=False):
    """A Markdown link or image: kept when it leaves the book; a link into the book becomes a
    reference; an image file of the book, which students do not have, is refused."""
    written = f"{'!' if image else ''}[{text}]({target})"
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return written
    path, _, anchor = target.partition("#")
    stem = Path(path).stem
    if not image and path.endswith((".ipynb", ".md")) and stem in book.titles:
        if anchor and anchor in book.targets:
            return reference(anchor, text, page, book)
        return reference(stem, text, page, book)
    if not image and target in book.targets:
        return reference(target, text, page, book)
    raise UnknownMyST(f"{written} points to a file students do not have")


def convert_inline(text, page, book):
    """The text with every role and every link into the book rewritten (roles first: a reference
    may become a link to the published book, which the link pass then keeps)."""
    text = ROLE.sub(lambda m: role(m.group("name"), m.group("content"), page, book), text)
    return LINK.sub(lambda m: link(m.group("text"), m.group("target"), page, book, bool(m.group("image"))),
                    text)


def convert(text, page, book):
    """One markdown cell's MyST as plain Markdown (citations are gathered in `page.cited`)."""
    page.nearby = {Path(m.group("target").partition("#")[0]).stem for m in LINK.finditer(text)}
    lines = convert_blocks(text.splitlines(), page, book)
    return convert_inline("\n".join(lines).strip("\n"), page, book)


def references(keys, book):
    """A "References" section listing `keys` in pybtex's plain style, as text: Markdown escapes
    would break the LaTeX maths in titles, and Jupyter links bare addresses itself."""
    from pybtex.database import BibliographyData
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "plain")()
    chosen = BibliographyData(entries={key: book.bibliography.entries[key] for key in keys})
    items = [" ".join(entry.text.render(text_backend()).split())
             for entry in style.format_bibliography(chosen)]
    return "## References\n\n" + "\n".join(f"- {item}" for item in items)
