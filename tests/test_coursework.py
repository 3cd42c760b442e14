"""The coursework tools: student notebooks leak nothing, and grades mean something."""

import csv
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

# make test runs this file on one pytest-xdist worker (--dist loadgroup): its tests share
# module fixtures that build or grade once.
pytestmark = pytest.mark.xdist_group("coursework")

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "coursework.py"


def run(*args):
    command = [sys.executable, str(TOOL), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def graded_chapters():
    return sorted(
        p for p in (ROOT / "book").glob("*.ipynb")
        if any(c.metadata.get("nbgrader", {}).get("grade") for c in nbformat.read(p, as_version=4).cells)
    )


def grade_ids(path, kind):
    return [c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(path, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get(kind)]


def answer_sources(nb):
    """{question: source of its answer cell} of a notebook."""
    import grading

    return {grading.question_of(c.metadata["nbgrader"]["grade_id"]): c.source for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def stub_answers(path):
    """{question: the stub a student receives}: the book notebook's answer cells with their solutions
    cleared by nbgrader (test_student_notebooks_carry_exactly_the_cleared_answers: as `make student`)."""
    from nbgrader.preprocessors import ClearSolutions

    return answer_sources(ClearSolutions().preprocess(nbformat.read(path, as_version=4), {})[0])


def write_student_notebooks(tmp_path_factory, *chapters):
    """A new folder holding `make student`'s notebooks (of the chosen chapters; default: all)."""
    out = tmp_path_factory.mktemp("student")
    result = run("student", *(["--chapters", *chapters] if chapters else []), "--output", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def short_notebook(nb, questions=None):
    """`nb` cut to its cells up to the setup cell and the autograded questions' own cells (of every
    question, or of those named). A question's tests may read only the setup and its own cells
    (test_structure.py), so a submission of these alone is graded as the whole chapter would be,
    in a fraction of the time: the tests that are about grading, not about the chapter, hand these in."""
    import grading

    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")

    def own(cell):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        return bool(grade_id) and (questions is None or grading.question_of(grade_id) in questions)

    nb.cells = nb.cells[: setup + 1] + [c for c in nb.cells[setup + 1:] if own(c)]
    return nb


def write_short(source, destination, questions=None):
    """Write the short version (short_notebook) of the notebook at `source` to `destination`."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(short_notebook(nbformat.read(source, as_version=4), questions), destination)


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    return write_student_notebooks(tmp_path_factory)


def read_rows(csv_path):
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def totals(rows, student, notebook=None):
    chosen = [r for r in rows if r["student"] == student and (notebook is None or r["notebook"] == notebook)]
    return sum(float(r["score"]) for r in chosen), sum(float(r["max_score"]) for r in chosen)


def test_every_chapter_gets_a_student_notebook(student_dir):
    assert sorted(p.name for p in student_dir.glob("*.ipynb")) == [p.name for p in graded_chapters()]


def split_lines(nb, blocks=("SOLUTION", "HIDDEN TESTS"), written_solutions=True):
    """(lines inside the `### BEGIN <block>` ... `### END <block>` blocks and, unless told otherwise,
    the written {solution} cells; the lines outside them), stripped and non-trivial."""
    secret, public = set(), set()
    for cell in nb.cells:
        written = (written_solutions and cell.cell_type == "markdown"
                   and re.match(r"\s*```\{solution\}", cell.source))
        inside = False
        for line in cell.source.splitlines():
            if any(f"### BEGIN {block}" in line for block in blocks):
                inside = True
            elif any(f"### END {block}" in line for block in blocks):
                inside = False
            elif len(line.strip()) > 3 and line.strip() != "```":
                (secret if inside or written else public).add(line.strip())
    return secret, public


def test_no_solution_line_appears_in_a_student_notebook(student_dir):
    for book_path in graded_chapters():
        secret, public = split_lines(nbformat.read(book_path, as_version=4))
        assert secret, f"{book_path.name}: found no solution lines to check"
        student_nb = nbformat.read(student_dir / book_path.name, as_version=4)
        student_lines = {line.strip() for c in student_nb.cells for line in c.source.splitlines()}
        # A line the book also shows outside every solution may legitimately stay.
        leaked = (student_lines & secret) - public
        assert not leaked, f"{book_path.name}: solution lines in the student notebook: {sorted(leaked)[:5]}"
        text = (student_dir / book_path.name).read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "{solution}"):
            assert marker not in text, f"{book_path.name}: {marker} left in the student notebook"


def test_student_notebooks_keep_every_test_and_stub_every_solution(student_dir):
    for book_path in graded_chapters():
        student = student_dir / book_path.name
        tests = [g for g in grade_ids(student, "grade") if not g.endswith("-answer")]  # written answers
        assert tests == grade_ids(book_path, "grade")
        for cell in nbformat.read(student, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
                assert "raise NotImplementedError()" in cell.source


def test_student_notebooks_carry_exactly_the_cleared_answers(student_dir):
    """The stubs that test_wrong_and_bad_submissions.py judges for every chapter are the student
    notebooks' answer cells."""
    for book_path in graded_chapters():
        shipped = answer_sources(nbformat.read(student_dir / book_path.name, as_version=4))
        assert shipped and shipped == stub_answers(book_path), f"{book_path.stem}: the answer cells"


@pytest.fixture(scope="module")
def graded(tmp_path_factory, student_dir, grade_flags):
    """One grading run: the reference, the stubs, one right answer and tampered test cells. The
    reference hands in whole the chapter the other three students use, so that a whole chapter runs
    under the sandbox's memory cap and time limit as a class's would (worker processes in the
    sandbox: test_sandbox.py); every other notebook is cut short (short_notebook: the setup and the
    questions' own cells), the student notebooks included. That the rest of a student notebook runs as the
    book's does is shown without running it again, by test_student_notebooks_run_until_the_first_exercise
    (outside the sandbox: its limits are exercised by the whole chapter here)."""
    subs = tmp_path_factory.mktemp("submissions")
    two_questions = next(p for p in graded_chapters() if len(grade_ids(p, "solution")) >= 2)
    for name in ("reference", "stubs", "one_right", "tampered"):
        (subs / name).mkdir()
    for path in graded_chapters():
        if path == two_questions:
            shutil.copy(path, subs / "reference" / path.name)
        else:
            write_short(path, subs / "reference" / path.name)
    # stubs: the student notebook of one chapter, cut short (every chapter's stubs are judged in
    # test_wrong_and_bad_submissions.py, without a kernel each).
    write_short(student_dir / two_questions.name, subs / "stubs" / two_questions.name)

    # one_right: the student notebook with only the first question's reference solution pasted in.
    book_nb = nbformat.read(two_questions, as_version=4)
    first = grade_ids(two_questions, "solution")[0]
    answer = next(c.source for c in book_nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == first)
    nb = nbformat.read(student_dir / two_questions.name, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == first:
            cell.source = answer
    nbformat.write(short_notebook(nb), subs / "one_right" / two_questions.name)

    # tampered: the student notebook with every test cell emptied of its asserts.
    nb = nbformat.read(student_dir / two_questions.name, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "assert True  # the tests are gone"
    nbformat.write(short_notebook(nb), subs / "tampered" / two_questions.name)

    out = tmp_path_factory.mktemp("run") / "grades"
    result = run("grade", subs, "--output", out, "--keep-executed", *grade_flags)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return read_rows(out / "grades.csv"), two_questions.stem, first.removesuffix("-solution"), out


def test_grades_csv_has_the_documented_columns(graded):
    rows, *_, out = graded
    with open(out / "grades.csv", encoding="utf-8-sig") as handle:
        assert handle.readline().strip() == "student_id,student,notebook,question,score,max_score,feedback"
    assert (out / "feedback" / "reference.txt").exists()


def test_reference_solutions_score_full_marks(graded):
    rows = graded[0]
    reference = [r for r in rows if r["student"] == "reference"]
    assert {r["notebook"] for r in reference} == {p.stem for p in graded_chapters()}
    for row in reference:
        assert float(row["score"]) == float(row["max_score"]) > 0, row


def test_a_student_notebook_scores_zero_through_nbgrader(graded):
    rows, chapter, *_ = graded
    stubs = [r for r in rows if r["student"] == "stubs" and r["notebook"] == chapter]
    reference = [r for r in rows if r["student"] == "reference" and r["notebook"] == chapter]
    assert stubs and len(stubs) == len(reference)
    for row in stubs:
        assert float(row["score"]) == 0 < float(row["max_score"]), row
        assert "not attempted" in row["feedback"], row


def test_one_right_answer_scores_exactly_its_points(graded):
    rows, chapter, question, _ = graded
    mine = {r["question"]: r for r in rows if r["student"] == "one_right"}
    assert float(mine[question]["score"]) == float(mine[question]["max_score"]) > 0
    others = [r for q, r in mine.items() if q != question]
    assert others and all(float(r["score"]) == 0 for r in others)


def test_tampering_with_tests_does_not_raise_the_score(graded):
    rows = graded[0]
    score, most = totals(rows, "tampered")
    assert most > 0 and score == 0, "the instructor's test cells must be restored before grading"


@pytest.mark.parametrize("args,message", [
    (["grade", "/no/such/folder"], "not found"),
    (["grade", "EMPTY"], "no submissions in"),
    (["grade", "SUBS", "--jobs", "0"], "--jobs"),
    (["grade", "SUBS", "--shard", "3/2"], "--shard"),
    (["grade", "SUBS", "--roster", "/no/roster.csv"], "roster not found"),
    (["merge", "/no/such/run", "--output", "/tmp/x"], "not a grading run"),
    (["grade", "SUBS", "--chapters", "99_nope"], "unknown chapter"),
    (["student", "--chapters", "99_nope"], "unknown chapter"),
    (["grade"], "name the submissions folder"),
])
def test_bad_invocations_fail_with_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "subs" / "someone").mkdir(parents=True)
    places = {"EMPTY": str(tmp_path / "empty"), "SUBS": str(tmp_path / "subs")}
    args = [places.get(a, a) for a in args]
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def hidden_test_lines(path):
    """The non-trivial lines of a notebook's hidden tests that appear nowhere else in it."""
    hidden, elsewhere = split_lines(nbformat.read(path, as_version=4), ("HIDDEN TESTS",), False)
    return hidden - elsewhere


def kept_notebooks(graded, student):
    """{file name: a student's notebook as the grader's kernel ran it, errors allowed}, as the grading
    run kept it (--keep-executed) to hand back: the recorder's cells and every line of the hidden tests
    must be out."""
    kept = graded[3] / "executed" / student
    executed = {path.name: nbformat.read(path, as_version=4) for path in sorted(kept.glob("*.ipynb"))}
    for name, nb in executed.items():
        assert not any(c.metadata.get("grading_recorder") for c in nb.cells), f"{name}: the recorder's cells"
        assert not any("BEGIN HIDDEN TESTS" in c.source for c in nb.cells), f"{name}: a hidden test's marker"
        shown = {line.strip() for c in nb.cells for line in c.source.splitlines()}
        leaked = hidden_test_lines(ROOT / "book" / name) & shown
        assert not leaked, f"{name}: hidden test lines handed back: {sorted(leaked)[:3]}"
    return executed


def test_kept_notebooks_hold_no_recorder_and_no_hidden_test(graded):
    """Every chapter the reference handed in (its hidden tests restored by the grader) comes back clean."""
    kept = kept_notebooks(graded, "reference")
    assert sorted(kept) == sorted(p.name for p in graded_chapters()), "every chapter must be kept"
    assert any(hidden_test_lines(p) for p in graded_chapters()), "no hidden tests to look for"


@pytest.fixture(scope="module")
def executed_stubs(graded):
    """{file name: the stubs' short student notebook as the grader's kernel ran it}, written answer
    cells kept for grading by hand."""
    executed = kept_notebooks(graded, "stubs")
    assert sorted(executed) == [f"{graded[1]}.ipynb"], "the stubs' chapter must be kept"
    for name, nb in executed.items():
        assert written_answers(nb), f"{name}: the written answer cells are kept, for grading by hand"
    return executed


@pytest.fixture(scope="module")
def book_runs():
    """{file name: the book's chapter as a kernel ran it}: `make test` runs each chapter once, in its
    nbval stage, which stores every passing run in the build's execution cache (conftest.py); the
    runs are read from there. A chapter the cache lacks (these tests run without that stage) is
    executed here, as the build would."""
    from book_toc import execution_cache
    from execute_book import cell_timeout, execute_one
    from glue_values import cached_run

    runs = {}
    for path in graded_chapters():
        run = cached_run(path, execution_cache())
        if run is None:
            run, _, error = execute_one(path, cell_timeout(ROOT))
            assert error is None, f"{path.name} failed to run:\n{error}"
        runs[path.name] = run
    return runs


def written_answers(nb):
    """The sources of a notebook's written answer cells (markdown, graded by hand)."""
    return [c.source for c in nb.cells
            if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]


def in_exercise(cell):
    """Whether the cell is an exercise's (an nbgrader answer or test cell)."""
    marks = cell.metadata.get("nbgrader", {})
    return bool(marks.get("grade") or marks.get("solution"))


def code_outside_exercises(nb):
    """The sources of the code cells that belong to no exercise."""
    return [c.source for c in nb.cells if c.cell_type == "code" and not in_exercise(c)]


def code_before_first_exercise(nb):
    """The sources of the code cells before the first cell of an exercise."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = next(i for i, c in enumerate(code) if in_exercise(c))
    return [c.source for c in code[:first]]


def test_student_notebooks_run_until_the_first_exercise(student_dir, book_runs):
    """A student notebook runs as the book does until its first unanswered exercise: its code cells
    outside the exercises are the book's, unchanged and in order, and the book's run of them raised
    nothing. (Its answer cells' stubs score 0 for every chapter: test_wrong_and_bad_submissions.py;
    one chapter's, run in the grader's kernel, fail first at an exercise:
    test_stubs_fail_first_at_an_exercise.)"""
    for book_path in graded_chapters():
        student = nbformat.read(student_dir / book_path.name, as_version=4)
        assert code_outside_exercises(student) == code_outside_exercises(book_runs[book_path.name]), (
            f"{book_path.stem}: the student notebook's code outside the exercises must be the book's")
        assert code_before_first_exercise(student) == code_before_first_exercise(book_runs[book_path.name]), (
            f"{book_path.stem}: the student notebook's first exercise must come where the book's does")
        errors = [c.source[:300] for c in book_runs[book_path.name].cells if c.cell_type == "code"
                  and any(o.get("output_type") == "error" for o in c.outputs)]
        assert not errors, f"{book_path.stem}: the book's run raised in:\n{errors[0]}"


def test_stubs_fail_first_at_an_exercise(executed_stubs):
    """Run by the grader's sandboxed kernel, the stubs' short notebook (the setup cell and the
    questions' cells of the untouched student notebook) fails first at an exercise's cell, on a stub."""
    for name, executed in executed_stubs.items():
        failing = [c for c in executed.cells if c.cell_type == "code"
                   and any(o.get("output_type") == "error" for o in c.outputs)]
        assert failing, f"{name}: the stubs must make some exercise check fail"
        assert in_exercise(failing[0]), (
            f"{name}: a cell outside the exercises failed first:\n{failing[0].source[:300]}")
        raised = {o.get("ename") for c in failing for o in c.outputs if o.get("output_type") == "error"}
        assert "NotImplementedError" in raised, f"{name}: no exercise failed on its stub: {raised}"


# ---------------------------------------------------------------------------------------------
# Student notebooks that stand alone in plain JupyterLab or Colab (tools/standalone.py)

RAW_MYST = re.compile(r"\{glue|\{exercise|\{solution|\{cite|\{ref\}|\{numref|\{doc\}|\{eq\}|^\s*(```|:::)\{"
                      r"|^\([^)\s]+\)=\s*$|\]\((?![a-z][a-z0-9+.-]*:)[^)\s]*\.(ipynb|md)\b", re.MULTILINE)


def markdown_of(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


def written_exercises(book_path):
    """The labels of a chapter's exercises that have no nbgrader answer cell of their own."""
    import standalone

    nb = nbformat.read(book_path, as_version=4)
    coded = {g.removesuffix("-solution") for g in grade_ids(book_path, "solution")}
    return [label for label in map(standalone.exercise_label, nb.cells) if label and label not in coded]


def test_student_notebooks_show_no_raw_myst(student_dir):
    for path in sorted(student_dir.glob("*.ipynb")):
        for cell in markdown_of(path):
            found = RAW_MYST.search(cell.source)
            assert not found, f"{path.name}: {found.group(0)!r} left in:\n{cell.source[:400]}"


def prose_pairs(book_path, student_path):
    """(book cell, student cell) for every markdown cell of the book that students receive, in order:
    the written model answers are removed, and the cells standalone.py adds are left out."""
    book = [c for c in markdown_of(book_path) if "{solution}" not in c.source]
    student = [c for c in markdown_of(student_path)
               if not c.metadata.get("nbgrader") and c.get("id") not in ("how-to-submit", "references")]
    return list(zip(book, student, strict=True))


def test_student_notebooks_show_every_glued_number(student_dir, book_runs):
    """Every {glue:text} of the book shows, in its own paragraph of the student notebook, the value
    the chapter glues when a kernel runs it with the real myst-nb: the book's run, whose code the
    student notebook shares (test_student_notebooks_run_until_the_first_exercise). In `make test`,
    `make student` reads its values from that same run, so this checks where and how they are
    written; that they are what a fresh run gives is checked by
    test_glued_values_read_from_the_build_cache_match_a_plain_run."""
    from myst_nb.core.variables import format_plain_text

    role = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
    for book_path in graded_chapters():
        glued = {}
        for cell in book_runs[book_path.name].cells:
            timed = "perf_counter" in cell.source  # timings differ from run to run
            for out in cell.get("outputs", []):
                record = out.get("metadata", {}).get("scrapbook")
                if record and not timed:
                    glued[record["name"]] = out["data"][record["mime_prefix"] + "text/plain"]
        checked = 0
        for book_cell, student_cell in prose_pairs(book_path, student_dir / book_path.name):
            for key, spec in role.findall(book_cell.source):
                if key in glued:
                    value = format_plain_text(glued[key], spec or "s")
                    assert value in student_cell.source, (
                        f"{book_path.stem}: {key} = {value} is not in:\n{student_cell.source[:500]}")
                    checked += 1
        assert checked >= 20, f"{book_path.stem}: only {checked} glued numbers could be checked"


def test_standalone_written_exercises_get_one_answer_cell(student_dir):
    for book_path in graded_chapters():
        cells = nbformat.read(student_dir / book_path.name, as_version=4).cells
        written = written_exercises(book_path)
        assert written, f"{book_path.stem}: expected written exercises"
        for label in written:
            at = [i for i, c in enumerate(cells)
                  if c.metadata.get("nbgrader", {}).get("grade_id") == f"{label}-answer"]
            assert len(at) == 1, f"{book_path.stem}: {label} has {len(at)} answer cells"
            answer, exercise = cells[at[0]], cells[at[0] - 1]
            meta = answer.metadata["nbgrader"]
            assert answer.cell_type == "markdown" and answer.source == "YOUR ANSWER HERE"
            assert meta["grade"] and meta["solution"] and not meta["locked"] and meta["points"] > 0
            assert exercise.source.startswith("### Exercise") and "graded by hand" in exercise.source


def test_standalone_questions_show_their_points(student_dir):
    import grading

    for book_path in graded_chapters():
        points = grading.questions_of(book_path)
        hidden = {g.split("-hidden-tests")[0] for g in grade_ids(book_path, "grade") if "-hidden-tests" in g}
        cells = nbformat.read(student_dir / book_path.name, as_version=4).cells
        for i, cell in enumerate(cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if cell.cell_type != "code" or not grade_id.endswith("-solution"):
                continue
            question = grade_id.removesuffix("-solution")
            heading = next(c.source for c in reversed(cells[:i]) if c.cell_type == "markdown")
            unit = "point" if points[question] == 1 else "points"
            shown = f"({points[question]:g} {unit})"
            assert heading.startswith("### Exercise") and shown in heading, (
                f"{book_path.stem}: {question} does not show {shown}:\n{heading[:300]}")
            assert ("hidden checks" in heading) == (question in hidden), f"{book_path.stem}: {question}"


def test_standalone_how_to_submit_opens_each_notebook(student_dir):
    for path in sorted(student_dir.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        at = [i for i, c in enumerate(cells) if c.source.startswith("## How to submit")]
        assert at and at[0] <= 1, f"{path.name}: no How to submit cell among the first two"
        text = cells[at[0]].source
        for must in ("YOUR CODE HERE", "YOUR ANSWER HERE", path.name, "Restart", "hidden checks", "return"):
            assert must in text, f"{path.name}: the How to submit cell does not mention {must!r}"


def test_standalone_grader_releases_the_cells_students_receive(student_dir):
    """For every chapter: nbgrader's release (from which the grader builds its gradebook) holds every
    graded cell of the student notebook, the written answers add no autograded question, and the grader's
    own steps around nbgrader (judge.instrument before, judge.without_recorder after) keep the
    written answer cells, which an instructor grades by hand. (One chapter's student notebook also
    goes through nbgrader's kernel: test_stubs_fail_first_at_an_exercise.)"""
    import grading
    import judge
    from course import nbgrader_api, release

    chapters = {path.stem: path for path in graded_chapters()}
    with tempfile.TemporaryDirectory() as tmp:
        released = release(nbgrader_api(Path(tmp)), Path(tmp), chapters)
        for stem, chapter in chapters.items():
            assert grade_ids(released[stem], "grade") == grade_ids(student_dir / chapter.name, "grade"), stem
            questions = grading.questions_of(released[stem])
            assert questions == grading.questions_of(chapter), stem
            assert not any(q.endswith("-answer") for q in questions), stem
            student = nbformat.read(student_dir / chapter.name, as_version=4)
            written = written_answers(student)
            program = judge.instrument(student, nbformat.read(chapter, as_version=4), Path(tmp) / "r.jsonl")
            assert written and written_answers(judge.without_recorder(program)) == written, (
                f"{stem}: the written answer cells")


# Unit tests of the MyST -> Markdown converter (tools/plain_markdown.py), on small strings.

TINY_BIB = """
@article{hoerl1970ridge, author = {Hoerl, Arthur E. and Kennard, Robert W.}, title = {Ridge},
  journal = {Technometrics}, year = {1970}}
@article{efron2004lars, author = {Efron, B. and Hastie, T. and Johnstone, I.}, title = {LARS},
  journal = {Ann. Statist.}, year = {2004}}
@misc{pytorch, author = {{PyTorch contributors}}, title = {torch.optim}, year = {2024}}
"""


def tiny_book(baseurl=""):
    from plain_markdown import Book, Target
    from pybtex.database import parse_string

    titles = {"02_ridge": "Deriving the L2 penalty: ridge regression", "03_lasso": "The lasso",
              "notation": "Notation"}
    targets = {"ridge-svd": Target("02_ridge", "4. What does ridge do to each direction?", "ridge-svd"),
               "lasso-kkt": Target("03_lasso", "2. When is a lasso solution optimal?", "lasso-kkt"),
               "lasso-affine": Target("03_lasso", "(2)", "equation-lasso-affine", "Equation", 2),
               "ex-lasso-cd": Target("03_lasso", "Exercise 10", "ex-lasso-cd", "Exercise", 10),
               "ex-lasso-enet": Target("03_lasso", "Exercise 11", "ex-lasso-enet", "Exercise", 11)}
    return Book(titles, targets, parse_string(TINY_BIB, "bibtex"), baseurl)


def convert(text, baseurl="", questions=None):
    from plain_markdown import Page
    from plain_markdown import convert as to_markdown

    page = Page("03_lasso", {"alpha": {"text/plain": "0.123456"}, "name": {"text/plain": "'bmi'"},
                             "table": {"text/plain": "<T>", "text/markdown": "**bold**"},
                             "numpy": {"text/plain": "np.float64(0.5)"}},
                questions or {})
    return to_markdown(text, page, tiny_book(baseurl)), page


def test_convert_glue_roles():
    text, _ = convert("a {glue:text}`alpha:.2f`, b {glue:text}`name`, c {glue}`alpha`, d {glue:md}`table`")
    assert text == "a 0.12, b bmi, c 0.123456, d **bold**"


def test_convert_exercises_show_number_title_and_points():
    from plain_markdown import Question

    source = "```{exercise} One coordinate update\n:label: ex-lasso-cd\n\nWrite `cd_update`.\n```"
    text, _ = convert(source, questions={"ex-lasso-cd": Question(3.0, True, hidden=True)})
    assert text.startswith("### Exercise 10: One coordinate update (3 points)\n")
    assert "hidden checks" in text and text.endswith("Write `cd_update`.")
    written = "```{exercise}\n:label: ex-lasso-enet\n\nSolve it.\n```"
    text, _ = convert(written, questions={"ex-lasso-enet": Question(1.0, False)})
    assert text.startswith("### Exercise 11 (1 point, graded by hand)\n") and text.endswith("Solve it.")


def test_convert_admonitions_become_blockquotes():
    assert convert("```{note}\nMind the scale.\n```")[0] == "> **Note**\n>\n> Mind the scale."
    assert convert(":::{admonition} Why\nBecause.\n\nReally.\n:::")[0] == (
        "> **Why**\n>\n> Because.\n>\n> Really.")
    nested = "````{tip}\n```{warning}\nCareful.\n```\n````"
    assert convert(nested)[0] == "> **Tip**\n>\n> > **Warning**\n> >\n> > Careful."


def test_convert_citations_and_collect_references():
    text, page = convert("Ridge {cite}`hoerl1970ridge`; {cite:t}`efron2004lars` and "
                         "{cite:p}`pytorch,hoerl1970ridge`.")
    assert text == ("Ridge (Hoerl and Kennard, 1970); Efron et al. (2004) and "
                    "(PyTorch contributors, 2024; Hoerl and Kennard, 1970).")
    assert page.cited == ["hoerl1970ridge", "efron2004lars", "pytorch"]
    from plain_markdown import references

    listing = references(page.cited, tiny_book())
    assert listing.startswith("## References\n\n- ") and listing.count("\n- ") == 3
    assert "Technometrics" in listing


def test_convert_cross_references_without_a_published_book():
    text, _ = convert("(lasso-kkt)=\n## 2. When is a lasso solution optimal?\n\nSee {ref}`lasso-kkt`.")
    assert text == "## 2. When is a lasso solution optimal?\n\nSee “2. When is a lasso solution optimal?”."
    assert convert("as {ref}`section 4 <ridge-svd>` shows")[0] == (
        "as section 4 (in *Deriving the L2 penalty: ridge regression*) shows")
    assert convert("[Ridge](02_ridge.ipynb) (section {ref}`ridge-svd`)")[0] == (
        "Ridge (section “4. What does ridge do to each direction?”)")  # the cell names the page already
    assert convert("the [next chapter](02_ridge.ipynb), the [notation](notation.md)")[0] == (
        "the next chapter (*Deriving the L2 penalty: ridge regression*), the notation")
    assert convert("{numref}`ex-lasso-cd`, {doc}`notation`, {ref}`an exercise <ex-lasso-enet>`")[0] == (
        "Exercise 10, Notation, an exercise")
    assert convert("[this exercise](ex-lasso-cd)")[0] == "this exercise"


def test_convert_cross_references_link_to_a_published_book():
    text, _ = convert("{ref}`ridge-svd`, [notation](notation.md), {eq}`lasso-affine`", "https://example.org/l1l2")
    assert text == ("[4. What does ridge do to each direction?](https://example.org/l1l2/book/02_ridge.html#ridge-svd)"
                    ", [notation](https://example.org/l1l2/book/notation.html), "
                    "[(2)](https://example.org/l1l2/book/03_lasso.html#equation-lasso-affine)")


def test_convert_maths():
    labelled = "$$\nw = S(z)\n$$ (lasso-affine)\n\nBy {eq}`lasso-affine`, {math}`x^2`."
    assert convert(labelled)[0] == "$$\nw = S(z)\n\\tag{2}\n$$\n\nBy (2), $x^2$."
    assert convert("```{math}\n:label: lasso-affine\n\na = b\n```")[0] == "$$\na = b\n\\tag{2}\n$$"
    plain = "$$\na = b\n$$ and $c$"
    assert convert(plain)[0] == plain


def test_convert_folded_admonitions_stay_folded():
    """A "Predict first" question keeps its answer folded in Jupyter, as on the book's page."""
    source = "```{admonition} Predict first: will $w$ shrink?\n:class: dropdown, tip\nYes: by $1/2$.\n```"
    assert convert(source)[0] == ("<details>\n<summary><b>Predict first: will $w$ shrink?</b></summary>\n\n"
                                  "Yes: by $1/2$.\n\n</details>")


def test_convert_keeps_outside_links_and_rejects_files_students_lack():
    from plain_markdown import UnknownMyST

    kept = "[`Ridge`](https://scikit-learn.org/stable/x.html#ridge), [top](#setup) and ![logo](https://x.org/a.png)"
    assert convert(kept)[0] == kept
    with pytest.raises(UnknownMyST, match="data/table.csv"):
        convert("[the table](data/table.csv)")
    with pytest.raises(UnknownMyST, match="nowhere"):
        convert("{ref}`nowhere`")


@pytest.mark.parametrize("source,named", [
    ("```{figure} plot.png\nA plot.\n```", "{figure}"),
    (":::{dropdown} More\nText.\n:::", "{dropdown}"),
    ("```{exercise} Unclosed\n:label: ex-lasso-cd\n", "never closed"),
    ("a {term}`lasso` b", "{term}"),
    ("{glue:text}`missing:.2f`", "missing"),
    ("{glue:text}`numpy:.2f`", "np.float64(0.5)"),
    ("{cite}`nobody2020`", "nobody2020"),
    ("![a plot](figures/plot.png)", "figures/plot.png"),
])
def test_convert_unknown_myst_raises_naming_it(source, named):
    from plain_markdown import UnknownMyST

    with pytest.raises(UnknownMyST) as error:
        convert(source)
    assert named in str(error.value)


def test_standalone_glued_values_are_recorded_as_myst_nb_stores_them(tmp_path):
    import glue_values

    setup = ("import numpy as np\nSEED = 0\ntry:\n    from myst_nb import glue\nexcept ImportError:\n"
             "    def glue(name, value, display=True):\n        pass\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(
        'glue("third", float(1 / 3), display=False)\nglue("n", 442, display=False)\nglue("who", "bmi")')])
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    values = glue_values.glued_values({"tiny": tmp_path / "tiny.ipynb"}, jobs=1)
    assert values == {"tiny": {"third": {"text/plain": "0.3333333333333333"}, "n": {"text/plain": "442"},
                               "who": {"text/plain": "'bmi'"}}}
    nb.cells.append(nbformat.v4.new_code_cell("assert False, 'a claim broke'"))
    nbformat.write(nb, tmp_path / "broken.ipynb")
    from course import UsageError

    with pytest.raises(UsageError, match="broken.ipynb: code cell 2 failed .*a claim broke"):
        glue_values.glued_values({"broken": tmp_path / "broken.ipynb"}, jobs=1)


def test_glued_values_read_from_the_build_cache_match_a_plain_run(tmp_path):
    """`make student` reads glued values from the book's executed notebooks when the build (or nbval)
    has run them, and runs the chapter as plain Python otherwise: both give the same values."""
    import glue_values
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from nbclient import NotebookClient

    chapter = tmp_path / "11_implicit_regularization.ipynb"  # the fastest graded chapter, copied
    shutil.copy(ROOT / "book" / chapter.name, chapter)
    nb = nbformat.read(chapter, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,  # as the build runs it
                   resources={"metadata": {"path": str(chapter.parent)}}).execute()
    cache = tmp_path / ".jupyter_cache"
    get_cache(str(cache)).cache_notebook_bundle(CacheBundleIn(nb, str(chapter)), check_validity=False)
    assert glue_values.cached_values(chapter, tmp_path / "elsewhere") is None, "no cache, no values"
    from_cache = glue_values.cached_values(chapter, cache)
    assert from_cache is not None, "the cache holds this run of the chapter"
    assert from_cache == glue_values.glued_values({chapter.stem: chapter}, cache_dir=cache)[chapter.stem]
    from_run = glue_values.glued_values({chapter.stem: chapter}, jobs=1)[chapter.stem]
    assert len(from_cache) >= 20 and from_cache == from_run
