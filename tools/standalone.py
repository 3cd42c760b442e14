"""Student notebooks that stand alone in plain JupyterLab or Colab, without the book around them.

Two steps, both applied to a chapter before nbgrader releases it:

- the structure (`student_cells`), shared by `make student` and the grader's release, so that
  nbgrader's database holds every graded cell the students received: a "How to submit" cell
  after the chapter's opening cell, and after each written exercise a manually graded answer cell
  (markdown, unlocked, WRITTEN_POINTS points). The grader scores only code test cells, so these
  cells add no autograded question;
- the text (`plain_markdown_cells`), for `make student` only: every markdown cell's MyST written
  as plain Markdown (plain_markdown.py), with the chapter's glued values filled in, each exercise
  headed by its points, and the sources it cites listed at the end. The grader skips this step:
  markdown is not graded, and it needs the chapters' values (glue_values.py).
"""

import nbformat
from judge import question_of
from plain_markdown import FENCE, Page, Question, UnknownMyST, convert, option, references

WRITTEN_POINTS = 1  # each written answer, graded by hand (an instructor may re-weigh them in nbgrader)
ANSWER = "YOUR ANSWER HERE"

HOW_TO_SUBMIT = """\
## How to submit

- **Answer in this notebook.** Replace `# YOUR CODE HERE` and `raise NotImplementedError()` in
  each answer cell with your code, and write each written answer in place of *{answer}*.
- **Keep its structure.** Do not rename, delete, split or move cells, and keep the file name
  `{name}.ipynb`. Do not edit the test cells: the original checks are put back when your
  notebook is graded.
- **Visible checks.** The test cells under each coding exercise check your answer as you work:
  if one fails, its message says what is wrong. Passing them is a good sign, not a guarantee.
- **Hidden checks.** Some exercises also have hidden checks (the empty test cells), which run only
  when your notebook is graded. Your grade comes from re-running your notebook from a clean start
  with all the checks, visible and hidden; written answers are graded by hand.
- **Only your answers' values count.** Each check is judged on the numbers your answer functions
  return; what else your code prints, plots or changes earns nothing.
- **Before you submit**, restart and run everything (JupyterLab: *Kernel → Restart Kernel and Run
  All Cells*; Colab: *Runtime → Restart session and run all*) and check that every cell above
  each exercise runs. A cell that fails on a clean run can stop the checks after it.
"""


def exercise_label(cell):
    """The label of the {exercise} a markdown cell holds, or None."""
    if cell.cell_type != "markdown":
        return None
    lines = cell.source.splitlines()
    for i, line in enumerate(lines):
        fence = FENCE.match(line.strip())
        if fence and fence.group("name") == "exercise":
            return option(lines[i + 1:], "label")
    return None


def nbgrader_of(cell):
    return cell.metadata.get("nbgrader", {})


def answer_cell(label):
    """A manually graded markdown answer cell for the written exercise `label`."""
    grade_id = f"{label}-answer"
    cell = nbformat.v4.new_markdown_cell(ANSWER)
    cell.id = grade_id  # stable ids: the same chapter always gives the same notebook
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": False,
                                 "points": WRITTEN_POINTS, "schema_version": 3, "solution": True,
                                 "task": False}
    return cell


def how_to_submit_cell(name):
    cell = nbformat.v4.new_markdown_cell(HOW_TO_SUBMIT.format(name=name, answer=ANSWER).strip())
    cell.id = "how-to-submit"
    return cell


def student_cells(nb, name):
    """The notebook with a "How to submit" cell after its first cell and an answer cell after each
    written exercise (one without an nbgrader answer cell of its own)."""
    coded = {question_of(nbgrader_of(c)["grade_id"]) for c in nb.cells if nbgrader_of(c).get("solution")}
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        label = exercise_label(cell)
        if label and label not in coded:
            cells.append(answer_cell(label))
    nb.cells = cells[:1] + [how_to_submit_cell(name)] + cells[1:]
    return nb


def questions(nb):
    """{exercise label: Question}: the points of each autograded question (its code test cells) and
    of each written answer (its markdown answer cell), and whether hidden checks run."""
    found = {}
    for cell in nb.cells:
        meta = nbgrader_of(cell)
        if not meta.get("grade"):
            continue
        label = question_of(meta["grade_id"]).removesuffix("-answer")
        question = found.setdefault(label, Question(0.0, cell.cell_type == "code"))
        question.points += float(meta.get("points", 0))
        question.hidden |= "-hidden-tests" in meta["grade_id"]
    return found


def plain_markdown_cells(nb, name, glued, book):
    """The notebook with its MyST written as plain Markdown (glued values from `glued`, the
    chapter's {key: mime bundle}) and a "References" cell at the end when it cites anything.
    Cells that nbgrader manages (answer cells) are left as they are."""
    page = Page(name, glued, questions(nb))
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not nbgrader_of(cell):
            try:
                cell.source = convert(cell.source, page, book)
            except UnknownMyST as exc:
                raise UnknownMyST(f"{name}.ipynb: {exc}") from None
    if page.cited:
        cell = nbformat.v4.new_markdown_cell(references(page.cited, book))
        cell.id = "references"
        nb.cells.append(cell)
    return nb
