"""Grading: each student's notebooks are autograded by nbgrader in a course directory of their own,
so students can be graded in parallel (or on several machines) with the same result as one by one."""

import os
import re
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from course import nbgrader_api, release

HIDDEN = "-hidden-tests"


def question_of(grade_id):
    return re.sub(r"-(hidden-tests|tests|solution)$", "", grade_id)


def questions_of(release_path):
    """{question: max points} for every autograded question of a released notebook."""
    import nbformat

    points = {}
    for cell in nbformat.read(release_path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            question = question_of(meta["grade_id"])
            points[question] = points.get(question, 0.0) + float(meta.get("points", 0))
    return points


def points_of(selected):
    """{chapter: {question: max points}}, read from a release of the chosen chapters."""
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        released = release(nbgrader_api(course), course, selected)
        return {name: questions_of(path) for name, path in released.items()}


def precheck(path):
    """None if nbgrader can be handed this file, else the reason it scores zero."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # any unreadable file gets a zero and a reason, never a crash
        return f"unreadable notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if not nb.cells:
        return "the notebook has no cells"
    return None


def errors_in(notebook):
    """{question: feedback} from the error outputs of an autograded notebook. An untouched answer
    reads "not attempted"; a failed hidden test is named, never quoted."""
    import nbformat

    found = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or "grade_id" not in meta:
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            grade_id = meta["grade_id"]
            if out.get("ename") == "NotImplementedError":  # the stub, in its cell or called by a test
                message = "not attempted (the answer still raises NotImplementedError)"
            elif grade_id.endswith(HIDDEN):
                message = "hidden checks: a hidden check failed"
            else:
                where = "solution" if grade_id.endswith("-solution") else "tests"
                detail = f"{out.get('ename')}: {out.get('evalue', '')}".strip().rstrip(":")
                message = f"{where}: {detail[:300]}"
            found.setdefault(question_of(grade_id), []).append(message)
    return {q: "; ".join(dict.fromkeys(v)) for q, v in found.items()}


def zeros(maximum, reason):
    """Zero rows, one per question, all with the same reason."""
    return [(question, 0.0, most, reason) for question, most in maximum.items()]


def autograde(api, course, name, maximum, submitted):
    """(question, score, max, feedback) rows for one notebook, graded as the course's one student."""
    from nbgrader.api import Gradebook, MissingEntry

    reason = precheck(submitted)
    if reason:
        return zeros(maximum, reason)
    target = course / "submitted" / "student" / name
    target.mkdir(parents=True)
    shutil.copy(submitted, target / f"{name}.ipynb")  # only the notebook: no shadowing modules
    previous = os.umask(0)  # the folders nbgrader makes must be writable by the sandboxed kernel
    try:
        result = api.autograde(name, "student", force=True, create=True)
    finally:
        os.umask(previous)
    if not result["success"]:
        first = (result["error"] or result["log"] or "nbgrader failed").strip().splitlines()[-1]
        return zeros(maximum, f"could not be graded: {first[:300]}")
    errors = errors_in(course / "autograded" / "student" / name / f"{name}.ipynb")
    scores = dict.fromkeys(maximum, 0.0)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(name, name, "student")
        except MissingEntry:
            return zeros(maximum, "no grades recorded")
        for grade in notebook.grades:
            question = question_of(grade.name)
            if question in scores:
                scores[question] += float(grade.score or 0.0)
    return [(question, scores[question], most,
             "all checks passed" if scores[question] >= most else errors.get(question, "checks failed"))
            for question, most in maximum.items()]


def grade_student(student, selected, points, timeout, memory_mb):
    """Rows (chapter, question, score, max, feedback) for every assigned chapter of one student;
    `memory_mb` caps the sandboxed kernel (None: no sandbox)."""
    rows = []
    handed_in = {name: path for name, path in selected.items() if name in student.files}
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        api = nbgrader_api(course, timeout=timeout, sandbox_memory_mb=memory_mb) if handed_in else None
        if handed_in:
            release(api, course, handed_in)
        for name in selected:
            if name not in handed_in:
                graded = zeros(points[name], "no submission")
            else:
                try:
                    graded = autograde(api, course, name, points[name], student.files[name])
                except Exception as exc:  # one bad submission must never stop the others
                    graded = zeros(points[name], f"grading failed: {type(exc).__name__}: {exc}"[:300])
            rows += [(name, *row) for row in graded]
    return rows


def grade_all(students, selected, timeout, jobs, memory_mb, progress=print):
    """{student key: rows} for every student, `jobs` students at a time; the result does not depend
    on `jobs` (each student is graded alone, in a course directory of its own)."""
    points = points_of(selected)
    results = {}
    if jobs <= 1:
        for student in students:
            results[student.key] = grade_student(student, selected, points, timeout, memory_mb)
            progress(student, results[student.key])
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {s.key: pool.submit(grade_student, s, selected, points, timeout, memory_mb)
                   for s in students}
        for student in students:
            results[student.key] = futures[student.key].result()
            progress(student, results[student.key])
    return results
