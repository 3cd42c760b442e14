"""The coursework tools: student notebooks leak nothing, and grades mean something."""

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import claims  # tools/ is on sys.path (conftest.py): reads the wrong answers in tests/mutants/
import nbformat
import pytest

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


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    result = run("student", "--output", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def read_rows(csv_path):
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def totals(rows, student, notebook=None):
    chosen = [r for r in rows if r["student"] == student and (notebook is None or r["notebook"] == notebook)]
    return sum(float(r["score"]) for r in chosen), sum(float(r["max_score"]) for r in chosen)


def test_every_chapter_gets_a_student_notebook(student_dir):
    assert sorted(p.name for p in student_dir.glob("*.ipynb")) == [p.name for p in graded_chapters()]


def split_lines(nb):
    """(lines inside solutions and hidden tests, lines outside them), stripped and non-trivial."""
    secret, public = set(), set()
    for cell in nb.cells:
        written = cell.cell_type == "markdown" and re.match(r"\s*```\{solution\}", cell.source)
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
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
        assert grade_ids(student, "grade") == grade_ids(book_path, "grade")
        for cell in nbformat.read(student, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                assert "raise NotImplementedError()" in cell.source


def wrong_answers(path):
    """[(question, mistake, solution source with the wrong answer pasted in, the score it must get)]
    from the chapter's [[wrong_answer]] entries in tests/mutants/<chapter>.toml."""
    solutions = {c.metadata["nbgrader"]["grade_id"].removesuffix("-solution"): c.source
                 for c in nbformat.read(path, as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    found = []
    for entry in claims.read_wrong_answers(claims.mutant_file(path)):
        question = entry["question"]
        assert question in solutions, f"{path.stem}: wrong answer for unknown question {question}"
        assert solutions[question].count(entry["find"]) == 1, f"{question}: `find` must occur once"
        pasted = solutions[question].replace(entry["find"], entry["replace"])
        found.append((question, entry["mistake"], pasted, entry["score"]))
    return found


def wrong_students(path):
    """The wrong answers dealt out to students `wrong-1`, `wrong-2`, …: student k answers each
    question with its k-th wrong answer (the reference where it has fewer)."""
    by_question = {}
    for question, mistake, source, score in wrong_answers(path):
        by_question.setdefault(question, []).append((mistake, source, score))
    count = max((len(v) for v in by_question.values()), default=0)
    return [{q: v[k] for q, v in by_question.items() if k < len(v)} for k in range(count)]


def test_every_autograded_question_has_a_plausible_wrong_answer():
    for path in graded_chapters():
        questions = {g.removesuffix("-solution") for g in grade_ids(path, "solution")}
        missing = questions - {question for question, *_ in wrong_answers(path)}
        assert not missing, f"{path.stem}: no [[wrong_answer]] for {sorted(missing)}"
        zero = {question for question, _, _, score in wrong_answers(path) if score == 0}
        assert questions <= zero, f"{path.stem}: no wrong answer scoring 0 for {sorted(questions - zero)}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory, student_dir, grade_flags):
    """One grading run: the reference, the stubs, one right answer, a tampered test cell, and the
    reference with every question's plausible wrong answer pasted in."""
    subs = tmp_path_factory.mktemp("submissions")
    two_questions = next(p for p in graded_chapters() if len(grade_ids(p, "solution")) >= 2)
    for name in ("reference", "stubs", "one_right", "tampered"):
        (subs / name).mkdir()
    for path in graded_chapters():
        shutil.copy(path, subs / "reference" / path.name)
        shutil.copy(student_dir / path.name, subs / "stubs" / path.name)
        for k, answers in enumerate(wrong_students(path), 1):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                question = cell.metadata.get("nbgrader", {}).get("grade_id", "").removesuffix("-solution")
                if cell.metadata.get("nbgrader", {}).get("solution") and question in answers:
                    cell.source = answers[question][1]
            (subs / f"wrong-{k}").mkdir(exist_ok=True)
            nbformat.write(nb, subs / f"wrong-{k}" / path.name)

    # one_right: the student notebook with only the first question's reference solution pasted in.
    book_nb = nbformat.read(two_questions, as_version=4)
    first = grade_ids(two_questions, "solution")[0]
    answer = next(c.source for c in book_nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == first)
    nb = nbformat.read(student_dir / two_questions.name, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == first:
            cell.source = answer
    nbformat.write(nb, subs / "one_right" / two_questions.name)

    # tampered: the student notebook with every test cell emptied of its asserts.
    nb = nbformat.read(student_dir / two_questions.name, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "assert True  # the tests are gone"
    nbformat.write(nb, subs / "tampered" / two_questions.name)

    out = tmp_path_factory.mktemp("run") / "grades"
    result = run("grade", subs, "--output", out, *grade_flags)
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


def test_student_notebooks_score_zero(graded):
    rows = graded[0]
    stubs = [r for r in rows if r["student"] == "stubs"]
    assert len(stubs) == len([r for r in rows if r["student"] == "reference"])
    for row in stubs:
        assert float(row["score"]) == 0 < float(row["max_score"]), row
        assert "not attempted" in row["feedback"], row


def test_one_right_answer_scores_exactly_its_points(graded):
    rows, chapter, question, _ = graded
    mine = {r["question"]: r for r in rows if r["student"] == "one_right"}
    assert float(mine[question]["score"]) == float(mine[question]["max_score"]) > 0
    others = [r for q, r in mine.items() if q != question]
    assert others and all(float(r["score"]) == 0 for r in others)


def test_plausible_wrong_answers_score_exactly_their_points(graded):
    """Each wrong answer scores 0, or, when it is right in some parts, exactly those parts' points."""
    rows = graded[0]
    checked = 0
    for path in graded_chapters():
        for k, answers in enumerate(wrong_students(path), 1):
            mine = {r["question"]: r for r in rows
                    if r["student"] == f"wrong-{k}" and r["notebook"] == path.stem}
            for question, (mistake, _, score) in answers.items():
                row = mine[question]
                assert float(row["score"]) == score < float(row["max_score"]), (
                    f"{path.stem} {question}: '{mistake}' scored {row['score']}, not {score}")
                checked += 1
    assert checked >= len(graded_chapters())


def test_tampering_with_tests_does_not_raise_the_score(graded):
    rows = graded[0]
    score, most = totals(rows, "tampered")
    assert most > 0 and score == 0, "the instructor's test cells must be restored before grading"


def test_bad_submissions_are_graded_and_do_not_stop_the_others(tmp_path, student_dir, grade_flags):
    chapter = "01_why_regularize"
    reference = ROOT / "book" / f"{chapter}.ipynb"
    subs = tmp_path / "subs"
    cases = ["good", "loops", "raises", "not_json", "no_cells", "noisy", "stray"]
    for name in cases:
        (subs / name).mkdir(parents=True)
    shutil.copy(reference, subs / "good" / reference.name)

    def variant(name, solution=None, extra=None, cells=None):
        nb = nbformat.read(student_dir / reference.name, as_version=4)
        if solution is not None:
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("solution"):
                    cell.source = solution
        if extra is not None:
            nb.cells.insert(3, nbformat.v4.new_code_cell(extra))
        if cells is not None:
            nb.cells = cells
        nbformat.write(nb, subs / name / reference.name)

    variant("loops", solution="while True:\n    pass")
    variant("raises", solution="raise RuntimeError('my bug')")
    variant("no_cells", cells=[])
    variant("noisy", extra="print('x' * 5_000_000)")
    (subs / "not_json" / reference.name).write_text("{ this is not json")
    (subs / "stray" / "notes.txt").write_text("not a notebook")
    shutil.copy(reference, subs / "stray" / reference.name)

    out = tmp_path / "run"
    result = run("grade", subs, "--output", out, "--timeout", "15", "--chapters", chapter, *grade_flags)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    rows = read_rows(out / "grades.csv")
    by_student = {name: [r for r in rows if r["student"] == name] for name in cases}
    assert all(by_student.values()), f"every submission gets rows: {by_student}"
    assert totals(rows, "good")[0] == totals(rows, "good")[1] > 0
    assert totals(rows, "stray", chapter)[0] == totals(rows, "good")[0], "a stray file costs nothing"
    notes = read_rows(out / "notes.csv")
    assert any(n["student"] == "stray" and "not a notebook" in n["note"] for n in notes), notes
    for name, reason in [("loops", "Timeout"), ("raises", "my bug"), ("not_json", "unreadable"),
                         ("no_cells", "no cells")]:
        assert totals(rows, name)[0] == 0, name
        feedback = [r["feedback"].lower() for r in by_student[name]]
        assert any(reason.lower() in f for f in feedback), (name, feedback)
    assert totals(rows, "noisy")[0] == 0  # the stub still raises; the noise must not break grading
    assert (out / "feedback" / "loops.txt").exists()


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


def test_student_notebooks_run_until_the_first_exercise(student_dir):
    """Everything before the first unanswered exercise runs; the first error is an exercise's."""
    from nbclient import NotebookClient

    for path in sorted(student_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, allow_errors=True, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(student_dir)}}).execute()
        failing = [c for c in nb.cells if c.cell_type == "code"
                   and any(o.get("output_type") == "error" for o in c.outputs)]
        assert failing, f"{path.name}: the stubs must make some exercise check fail"
        first = failing[0].metadata.get("nbgrader", {})
        assert first.get("grade") or first.get("solution"), (
            f"{path.name}: a cell outside the exercises failed first:\n{failing[0].source[:300]}"
        )
