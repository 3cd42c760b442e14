"""Coursework commands: student notebooks and autograding, both from the book's own notebooks.

    python tools/coursework.py student [--chapters CH ...] [--output DIR]
    python tools/coursework.py grade SUBMISSIONS [--chapters CH ...] [--output CSV] [--timeout S]

The notebooks in book/ are the instructor version and the only source. Exercises follow the
nbgrader format, so both commands drive nbgrader (generate_assignment, autograde) in a
throw-away course directory. Our own code does only what nbgrader cannot: it removes the
written {solution} blocks (nbgrader knows nothing of sphinx-exercise), checks submissions
before nbgrader sees them, and turns nbgrader's gradebook into one CSV row per question.
"""

import argparse
import csv
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
# Left in a student notebook, any of these would leak a solution or a hidden test.
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "{solution}")
WRITTEN_SOLUTION = re.compile(r"^\s*```\{solution\}")
FIELDS = ["student", "notebook", "question", "score", "max_score", "feedback"]


class UsageError(Exception):
    """Bad input from the person running the command: reported in one line, exit status 2."""


def chapters():
    """Chapter notebooks that carry autograded exercises, by stem."""
    import nbformat

    found = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
            found[path.stem] = path
    return found


def pick_chapters(names):
    available = chapters()
    if not names:
        return available
    stems = [n.removesuffix(".ipynb") for n in names]
    unknown = [n for n, stem in zip(names, stems, strict=True) if stem not in available]
    if unknown:
        raise UsageError(f"unknown chapter {', '.join(unknown)}; choose from: {', '.join(available)}")
    return {stem: available[stem] for stem in stems}


def without_written_solutions(path):
    """The notebook with every markdown cell that holds a {solution} directive removed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "markdown" and WRITTEN_SOLUTION.match(c.source))]
    return nb


def nbgrader_api(course, timeout=60):
    """An NbGraderAPI on a fresh course directory (absolute paths: nbgrader needs them)."""
    # nbgrader runs `alembic` by name; make this interpreter's scripts findable.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    config.Execute.timeout = timeout
    # A submission whose test cells were deleted is graded with the instructor's cells put back.
    config.OverwriteCells.add_missing_cells = True
    return NbGraderAPI(config=config)


def release(api, course, selected):
    """Copy the chosen chapters into the course's source/ and generate their student versions."""
    import nbformat

    for name, path in selected.items():
        source = course / "source" / name
        source.mkdir(parents=True)
        nbformat.write(without_written_solutions(path), source / f"{name}.ipynb")
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not generate {name}: {result['error']}\n{result['log']}")
    return {name: course / "release" / name / f"{name}.ipynb" for name in selected}


def check_no_leaks(path):
    text = path.read_text(encoding="utf-8")
    leaks = [m for m in LEAK_MARKERS if m in text]
    if leaks:
        raise RuntimeError(f"{path.name} still contains {leaks}: refusing to write a student notebook")


def cmd_student(args):
    selected = pick_chapters(args.chapters)
    output = Path(args.output).resolve()
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        released = release(nbgrader_api(course), course, selected)
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        for path in released.values():
            check_no_leaks(path)
            shutil.copy(path, output / path.name)
    print(f"wrote {len(released)} student notebooks to {output}")
    return 0


# ---------------------------------------------------------------------------------------- grading

def safe_id(name):
    """nbgrader needs plain identifiers; keep the instructor's folder name for the report."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


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


def question_of(grade_id):
    return re.sub(r"-(hidden-tests|tests|solution)$", "", grade_id)


def zeros(maximum, reason):
    """Zero rows, one per question, all with the same reason."""
    return [(question, 0.0, most, reason) for question, most in maximum.items()]


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
    """{question: 'ename: evalue; ...'} from the error outputs of an autograded notebook."""
    import nbformat

    found = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or "grade_id" not in meta:
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                message = f"{out.get('ename')}: {out.get('evalue', '')}".strip().rstrip(":")
                where = "solution" if meta["grade_id"].endswith("-solution") else "tests"
                found.setdefault(question_of(meta["grade_id"]), []).append(f"{where}: {message[:300]}")
    return {q: "; ".join(v) for q, v in found.items()}


def grade_one(api, course, student, name, maximum, submitted):
    """Rows for one student's notebook of one chapter; `maximum` maps its questions to points."""
    from nbgrader.api import Gradebook, MissingEntry

    reason = precheck(submitted)
    if reason:
        return zeros(maximum, reason)
    sid = safe_id(student)
    target = course / "submitted" / sid / name
    target.mkdir(parents=True)
    shutil.copy(submitted, target / f"{name}.ipynb")  # only the notebook: no shadowing modules
    result = api.autograde(name, sid, force=True, create=True)
    if not result["success"]:
        first = (result["error"] or result["log"] or "nbgrader failed").strip().splitlines()[-1]
        return zeros(maximum, f"could not be graded: {first[:300]}")
    errors = errors_in(course / "autograded" / sid / name / f"{name}.ipynb")
    scores = dict.fromkeys(maximum, 0.0)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(name, name, sid)
        except MissingEntry:
            return zeros(maximum, "no grades recorded")
        for grade in notebook.grades:
            question = question_of(grade.name)
            if question in scores:
                scores[question] += float(grade.score or 0.0)
    rows = []
    for question, most in maximum.items():
        feedback = "all checks passed" if scores[question] >= most else errors.get(question, "checks failed")
        rows.append((question, scores[question], most, feedback))
    return rows


def student_folders(submissions):
    if not submissions.is_dir():
        raise UsageError(f"submissions folder not found: {submissions}")
    folders = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UsageError(f"no student folders in {submissions} "
                         f"(expected {submissions}/<student>/<chapter>.ipynb)")
    return folders


def write_feedback(directory, student, rows):
    directory.mkdir(parents=True, exist_ok=True)
    total = sum(r[3] for r in rows)
    most = sum(r[4] for r in rows)
    lines = [f"Feedback for {student}: {total:g} / {most:g} points", ""]
    for _, notebook, question, score, max_score, feedback in rows:
        lines.append(f"- {notebook} / {question}: {score:g} / {max_score:g} — {feedback}")
    (directory / f"{safe_id(student)}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def cmd_grade(args):
    if not args.submissions:
        raise UsageError("name the submissions folder: make grade SUBMISSIONS=<dir>")
    submissions = Path(args.submissions).resolve()
    folders = student_folders(submissions)
    selected = pick_chapters(args.chapters)
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    output = Path(args.output).resolve()
    all_rows = []
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        api = nbgrader_api(course, timeout=args.timeout)
        points = {name: questions_of(path) for name, path in release(api, course, selected).items()}
        for folder in folders:
            student, rows = folder.name, []
            handed_in = {p.name: p for p in folder.iterdir() if not p.name.startswith(".")}
            for name, maximum in points.items():
                path = handed_in.pop(f"{name}.ipynb", None)
                if path is None:
                    if args.chapters:  # an assigned chapter that was not handed in
                        rows += [(student, name, *row) for row in zeros(maximum, "not submitted")]
                    continue
                try:
                    graded = grade_one(api, course, student, name, maximum, path)
                except Exception as exc:  # one bad submission must never stop the others
                    graded = zeros(maximum, f"grading failed: {type(exc).__name__}: {exc}"[:300])
                rows += [(student, name, *row) for row in graded]
            for stray in sorted(handed_in):
                rows.append((student, stray, "-", 0.0, 0.0, "not a notebook of this course: ignored"))
            write_feedback(output.parent / "feedback", student, rows)
            all_rows += rows
            print(f"graded {student}: {sum(r[3] for r in rows):g} / {sum(r[4] for r in rows):g}")
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for row in all_rows:
            writer.writerow([row[0], row[1], row[2], f"{row[3]:g}", f"{row[4]:g}", row[5]])
    print(f"wrote {output} ({len(all_rows)} rows) and per-student feedback in {output.parent / 'feedback'}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Student notebooks and autograding for the course.")
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student notebooks (solutions removed)")
    student.add_argument("--chapters", nargs="+", metavar="CH", help="chapter stems (default: all)")
    student.add_argument("--output", default=str(ROOT / "_build" / "student"))
    grade = sub.add_parser("grade", help="grade SUBMISSIONS/<student>/<chapter>.ipynb")
    grade.add_argument("submissions", nargs="?", default="")
    grade.add_argument("--chapters", nargs="+", metavar="CH",
                       help="the assigned chapters; a missing one scores zero "
                            "(default: whatever was handed in)")
    grade.add_argument("--output", default=str(ROOT / "_build" / "grades.csv"))
    grade.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    args = parser.parse_args(argv)
    try:
        return cmd_student(args) if args.command == "student" else cmd_grade(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
