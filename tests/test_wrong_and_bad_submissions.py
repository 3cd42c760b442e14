"""Coursework, the costly part apart from one grading run (test_coursework.py), so that pytest-xdist
can run it beside that file: each chapter's reference answers score full marks, its stubs score
zero as not attempted and its plausible wrong answers exactly their declared points; bad
submissions are graded without stopping the others."""

import json
import subprocess
import sys

import claims  # tools/ is on sys.path (conftest.py): reads the wrong answers in tests/mutants/
import nbformat
import pytest
from test_claims import kill_session
from test_coursework import (
    ROOT,
    answer_sources,
    grade_ids,
    graded_chapters,
    read_rows,
    run,
    short_notebook,
    stub_answers,
    totals,
    write_short,
    write_student_notebooks,
)

# make test runs this file on one pytest-xdist worker (--dist loadgroup): its chapter tests share
# one module fixture that judges every chapter at once (the bad submissions' grading run goes along).
pytestmark = pytest.mark.xdist_group("answers")


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


STUDENT_LIMIT_S = 120  # per student in the answer run: a wrong answer that never ends is reported as such
RUN_LIMIT_S = STUDENT_LIMIT_S + 300  # the whole run: one student at its limit, and the rest as usual

ANSWER_RUNNER = """
import json, signal, sys
class TooLong(BaseException):
    pass
def too_long(signum, frame):
    raise TooLong()
signal.signal(signal.SIGALRM, too_long)
job = json.load(sys.stdin)
for student in job["students"]:
    print("\\n" + student["label"], file=sys.stderr, flush=True)  # names the student, should the run die
    namespace = {"__name__": "__main__"}
    signal.alarm(job["limit"])
    try:
        for source in student["cells"]:
            try:
                exec(compile(source, "cell", "exec"), namespace)
            except TooLong:
                raise
            except BaseException:
                pass
    except TooLong:
        print("\\nTOO LONG " + student["label"], file=sys.stderr, flush=True)
    finally:
        signal.alarm(0)
print("\\nEVERY STUDENT RAN", file=sys.stderr, flush=True)
"""


def judged_answers(chapters, workdir):
    """{chapter path: ([{question: score}], [{grade_id: (passed, message)}], [students past
    STUDENT_LIMIT_S])} for each chapter's students ({question: answer source}): the scores, and the
    judge's verdict on each graded part, judged by judge.py exactly as the grader judges, but
    running only the setup, answer and test cells (fast). Every chapter's students run in one
    process, each in a fresh namespace, and one judge reads them all: two interpreters for the whole
    book instead of two per chapter. What a student changes in the process itself (a patched
    module, warning filters, NumPy's error settings) is not undone for the next, as it is not
    between one student's chapters in the grader's judge; no answer in the book does so."""
    import grading
    import judge

    runs, jobs = [], {}
    for path, students in chapters.items():
        source = nbformat.read(path, as_version=4)
        for k, answers in enumerate(students):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                question = grading.question_of(cell.metadata.get("nbgrader", {}).get("grade_id", ""))
                if cell.metadata.get("nbgrader", {}).get("solution") and question in answers:
                    cell.source = answers[question]
            records = workdir / f"{path.stem}-{k}.jsonl"
            program = judge.instrument(nb, source, records)
            setup = next(c for c in nb.cells if c.cell_type == "code")
            kept = [c.source for c in program.cells[:1]] + [setup.source] + [
                c.source for c in program.cells[1:]
                if c.cell_type == "code" and (c.metadata.get("nbgrader") or "_grading_recorder." in c.source)]
            runs.append({"label": f"{path.stem}#{k}", "cells": kept})
            jobs.setdefault(path, []).append({"chapter": f"{path.stem}#{k}", "source": str(path),
                                              "records": str(records), "answers": dict(answers)})
    if not runs:
        return {}
    folders = {path.parent for path in chapters}
    assert len(folders) == 1, f"the chapters must share one folder (their working directory): {folders}"
    job = {"students": runs, "limit": STUDENT_LIMIT_S}
    labels = {run["label"] for run in runs}

    def died(stderr, how):
        last = ([line for line in stderr.splitlines() if line in labels] or ["none"])[-1]
        late = [line for line in stderr.splitlines() if line.startswith("TOO LONG ")]
        return AssertionError(f"the answer run {how} at student {last} (before it: {late or 'none'} "
                              f"past {STUDENT_LIMIT_S} s):\n{stderr[-3000:]}")

    # a session of its own: the whole run's limit (should a student's code keep the alarm from
    # firing, in C code) ends every process its students started too
    process = subprocess.Popen([sys.executable, "-c", ANSWER_RUNNER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folders.pop(),
                               start_new_session=True)
    try:
        _, stderr = process.communicate(json.dumps(job), timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        kill_session(process)
        _, stderr = process.communicate()
        raise died(stderr, f"ran past {RUN_LIMIT_S} s") from None
    finally:
        kill_session(process)  # and the students' leftover processes
    if process.returncode != 0 or "EVERY STUDENT RAN" not in stderr:  # os._exit in an answer, say
        raise died(stderr, f"stopped (exit status {process.returncode})")
    too_long = {line.removeprefix("TOO LONG ") for line in stderr.splitlines()
                if line.startswith("TOO LONG ")}
    verdicts = grading.run_judge([job for chapter in jobs.values() for job in chapter], timeout=600)
    judged = {}
    for path, chapter in jobs.items():
        maximum = grading.questions_of(path)
        scores = [{q: score for q, score, _, _ in grading.score(path, maximum, verdicts[job["chapter"]], {})}
                  for job in chapter]
        late = [job["chapter"] for job in chapter if job["chapter"] in too_long]
        judged[path] = scores, [verdicts[job["chapter"]] for job in chapter], late
    return judged


@pytest.fixture(scope="module")
def every_chapter_judged(request, tmp_path_factory):
    """Each graded chapter's reference, its stubs (the answer cells `make student` writes:
    test_coursework.py checks they are these) and its wrong answers, judged in one run; a chapter
    whose students cannot be made (a `find` that no longer matches) is left out, with the reason
    its own test reports."""
    chapters, unmade = {}, {}
    test = test_reference_stubs_and_wrong_answers_score_exactly_their_points.__name__
    selected = {item.callspec.params["path"] for item in request.session.items  # all, or those -k keeps
                if getattr(item, "originalname", "") == test}
    for path in sorted(selected):
        try:
            reference = answer_sources(nbformat.read(path, as_version=4))
            wrong = [dict(reference, **{q: a[1] for q, a in dealt.items()}) for dealt in wrong_students(path)]
            chapters[path] = [reference, stub_answers(path), *wrong]
        except Exception as error:  # noqa: BLE001 - reported by that chapter's test
            unmade[path] = f"{type(error).__name__}: {error}"
    return judged_answers(chapters, tmp_path_factory.mktemp("answers")), unmade


@pytest.mark.parametrize("path", graded_chapters(), ids=lambda p: p.stem)
def test_reference_stubs_and_wrong_answers_score_exactly_their_points(path, every_chapter_judged):
    """Each wrong answer scores 0, or, when it is right in some parts, exactly those parts' points;
    in the same run the reference scores full marks and the stubs score 0 as not attempted.
    test_coursework.py also grades one chapter's stubs through nbgrader, in the sandboxed kernel."""
    import grading

    judged, unmade = every_chapter_judged
    if path in unmade:
        pytest.fail(f"{path.stem}: its students could not be made: {unmade[path]}")
    dealt = wrong_students(path)
    scores, verdicts, late = judged[path]
    assert not late, f"{path.stem}: the answers of {late} ran past {STUDENT_LIMIT_S} s"
    assert len(scores) == 2 + len(dealt), f"{path.stem}: {len(scores)} students judged, not {2 + len(dealt)}"
    maximum = grading.questions_of(path)
    assert scores[0] == maximum, f"{path.stem}: the reference must score full marks, got {scores[0]}"
    assert scores[1] == dict.fromkeys(maximum, 0.0), f"{path.stem}: the stubs must score 0, got {scores[1]}"
    parts = [grade_id for grade_id, *_ in grading.parts_of(path)]
    stubbed = verdicts[1]
    unattempted = [g for g in parts if not stubbed[g][0] and stubbed[g][1].startswith("not attempted")]
    assert unattempted == parts, f"{path.stem}: the stubs must fail every part as not attempted: {stubbed}"
    for answers, got in zip(dealt, scores[2:], strict=True):
        for question, (mistake, _, score) in answers.items():
            assert got[question] == score < maximum[question], (
                f"{path.stem} {question}: '{mistake}' scored {got[question]}, not {score}")


BAD_CHAPTER = "01_why_regularize"


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    """The student notebook of the one chapter the bad submissions are made from."""
    return write_student_notebooks(tmp_path_factory, BAD_CHAPTER)


def test_bad_submissions_are_graded_and_do_not_stop_the_others(tmp_path, student_dir, grade_flags):
    chapter = BAD_CHAPTER
    reference = ROOT / "book" / f"{chapter}.ipynb"
    subs = tmp_path / "subs"
    cases = ["good", "loops", "raises", "not_json", "no_cells", "noisy", "stray"]
    for name in cases:
        (subs / name).mkdir(parents=True)
    # Short notebooks (the questions' own cells): what is tested is the grader, not the chapter.
    write_short(reference, subs / "good" / reference.name)

    def variant(name, solution=None, extra=None, cells=None):
        nb = short_notebook(nbformat.read(student_dir / reference.name, as_version=4))
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
    write_short(reference, subs / "stray" / reference.name)

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


