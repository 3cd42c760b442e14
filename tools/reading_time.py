"""Estimated reading time of the book's chapters, from counts (not from timing students).

    python tools/reading_time.py [NOTEBOOK ...] [--exclude LABEL ...] [--markdown]

With no notebook named, the toc's notebooks are read (tools/book_toc.py). A chapter is cut into
sections at its level-2 headings (`## `); a section's label is the `(label)=` line just above its
heading. Counted, per chapter:

- prose words: whitespace-separated tokens of the Markdown cells (so LaTeX counts as words),
  leaving out label lines `(label)=`, directive fences (lines starting with ``` or :::) and
  directive options (`:name: value`);
- code lines: the non-blank lines of the code cells (folded ones too: a check or a plot's code
  is one click away, and a student who runs the notebook sees it); cells tagged `remove-cell`,
  which are not on the page, do not count;
- code cells: the code cells, but for those.

The sections "Exercises" and "Further reading" count in no column (the exercises, their answer
cells and their model answers are not reading). Everything else counts in the whole-chapter
column, the introduction, Setup and Key takeaways included. The estimate is

    minutes = words / 150 + (5 * code lines + 15 * code cells) / 60

(150 words a minute of technical prose, 5 seconds a line of code, 15 seconds a cell to run it and
look at its output). A second, "core path" column leaves out the sections a chapter marks as
going deeper, by a heading that ends in "(going deeper)"; `--exclude LABEL ...` leaves out more
sections, by label (an unknown label is an error). Totals are sums of unrounded minutes; only the
printed values are rounded.
"""

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import toc_notebooks  # noqa: E402

WORDS_PER_MINUTE = 150
SECONDS_PER_LINE = 5
SECONDS_PER_CELL = 15
NOT_READING = {"exercises", "further reading"}
GOING_DEEPER = "(going deeper)"
LABEL = re.compile(r"^\s*\(([^()\s]+)\)=\s*$")
SKIPPED_LINE = re.compile(r"^\s*(```|:::|:[\w-]+:)")


@dataclass
class Counts:
    words: int = 0
    lines: int = 0
    cells: int = 0

    def add(self, other):
        self.words += other.words
        self.lines += other.lines
        self.cells += other.cells

    @property
    def minutes(self):
        return (self.words / WORDS_PER_MINUTE
                + (SECONDS_PER_LINE * self.lines + SECONDS_PER_CELL * self.cells) / 60)


def cell_counts(cell):
    if cell.cell_type == "markdown":
        lines = [line for line in cell.source.splitlines()
                 if not LABEL.match(line) and not SKIPPED_LINE.match(line)]
        return Counts(words=sum(len(line.split()) for line in lines))
    if cell.cell_type == "code":
        tags = cell.metadata.get("tags", [])
        if "remove-cell" in tags:
            return Counts()
        return Counts(lines=sum(1 for line in cell.source.splitlines() if line.strip()), cells=1)
    return Counts()


def sections(notebook):
    """(label or None, heading or None, Counts) per section, the introduction first."""
    found, label, heading, counts = [], None, None, Counts()
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            pending = None
            for line in cell.source.splitlines():
                if LABEL.match(line):
                    pending = LABEL.match(line).group(1)
                elif line.startswith("## "):
                    found.append((label, heading, counts))
                    label, heading, counts = pending, line[3:].strip(), Counts()
                    pending = None
                elif line.strip():
                    pending = None
        counts.add(cell_counts(cell))
    found.append((label, heading, counts))
    return found


def chapter_counts(path, exclude=()):
    """(whole chapter, core path, labels of the chapter's sections) for one notebook."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Exception as error:  # nbformat raises many kinds for a file that is not a notebook
        raise ValueError(f"{path}: not a notebook ({type(error).__name__})") from None
    whole, core, labels = Counts(), Counts(), set()
    for label, heading, counts in sections(notebook):
        labels.add(label)
        if heading is not None and heading.lower() in NOT_READING:
            continue
        whole.add(counts)
        if label not in exclude and not (heading or "").endswith(GOING_DEEPER):
            core.add(counts)
    return whole, core, labels


def main(argv=None):
    parser = argparse.ArgumentParser(description="Estimated reading time per chapter, from counts.")
    parser.add_argument("notebooks", nargs="*", help="notebooks (default: the toc's)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="LABEL",
                        help="section labels left out of the core column")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or toc_notebooks()
    rows, seen = [], set()
    try:
        for path in paths:
            if path.suffix != ".ipynb":
                raise ValueError(f"{path}: not a notebook (expected .ipynb)")
            whole, core, labels = chapter_counts(path, set(args.exclude))
            seen |= labels
            rows.append((path.stem, whole, core))
    except ValueError as error:
        print(f"reading_time: {error}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.exclude) - seen)
    if unknown:
        print(f"reading_time: no section labelled {', '.join(unknown)}", file=sys.stderr)
        return 2
    both = any(core.minutes != whole.minutes for _, whole, core in rows)

    def cell(core, whole, spec):
        return f"{core:{spec}} / {whole:{spec}}" if both else f"{whole:{spec}}"

    total_core = sum(core.minutes for _, _, core in rows)
    total_whole = sum(whole.minutes for _, whole, _ in rows)
    if args.markdown:
        print("| chapter | prose words | code lines | code cells | minutes |")
        print("|---|---|---|---|---|")
        for stem, whole, core in rows:
            print(f"| {{doc}}`{stem}` | {cell(core.words, whole.words, ',')} | "
                  f"{cell(core.lines, whole.lines, ',')} | {cell(core.cells, whole.cells, ',')} | "
                  f"{cell(core.minutes, whole.minutes, ',.0f')} |")
        print(f"| all chapters | | | | {cell(total_core, total_whole, ',.0f')} |")
        return 0
    columns = "core / whole" if both else "whole chapter"
    print(f"{'chapter':40s} {'words':>17s} {'code lines':>13s} {'cells':>9s} {'minutes':>11s}  ({columns})")
    for stem, whole, core in rows:
        print(f"{stem:40s} {cell(core.words, whole.words, '7d'):>17s} "
              f"{cell(core.lines, whole.lines, '5d'):>13s} {cell(core.cells, whole.cells, '3d'):>9s} "
              f"{cell(core.minutes, whole.minutes, '4.0f'):>11s}")
    print(f"{'all chapters':40s} {'':>17s} {'':>13s} {'':>9s} {cell(total_core, total_whole, '4.0f'):>11s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
