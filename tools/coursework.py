"""Coursework commands: student notebooks and autograding, both from the book's own notebooks.

    python tools/coursework.py student [--chapters CH ...] [--output DIR]
    python tools/coursework.py grade SUBMISSIONS [--roster CSV] [--chapters CH ...] [--output DIR]
                                     [--timeout S] [--jobs N] [--shard i/N] [--keep-executed]
    python tools/coursework.py merge RUN [RUN ...] --output DIR

The notebooks in book/ are the instructor version and the only source. Exercises follow the
nbgrader format, so the commands drive nbgrader (generate_assignment, autograde) in throw-away
course directories. Our own code does what nbgrader does not: it removes the written {solution}
blocks (course.py), finds each student's notebooks in the layouts instructors receive
(submissions.py), grades students in parallel or in shards (grading.py), and writes gradebook
files (gradebook.py).
"""

import argparse
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from course import ROOT, UsageError, pick_chapters
from gradebook import merge, refuse_earlier_run, write_run
from grading import grade_all
from sandbox import unavailable as sandbox_unavailable
from student_notebooks import write_student_notebooks
from submissions import discover, read_roster, shard


def cmd_student(args):
    output, count = write_student_notebooks(pick_chapters(args.chapters), args.output)
    print(f"wrote {count} student notebooks to {output}")
    return 0


def default_run_folder():
    return ROOT / "_build" / "grades" / datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")


def cmd_grade(args):
    if not args.submissions:
        raise UsageError("name the submissions folder: make grade SUBMISSIONS=<dir>")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.memory < 256:
        raise UsageError("--memory is in MB and must be at least 256")
    if args.shard:
        shard([], args.shard)  # a malformed slice is reported before any work
    roster = read_roster(args.roster) if args.roster else None
    available = pick_chapters(None)
    students, problems = discover(Path(args.submissions), available, roster)
    if args.chapters:
        selected = pick_chapters(args.chapters)
    else:  # what anyone handed in is what was assigned
        handed = {name for s in students for name in s.files}
        selected = {name: path for name, path in available.items() if name in handed}
        if not selected:
            raise UsageError(f"no notebook of this course in {args.submissions}; "
                             f"chapters: {', '.join(available)}")
    if args.shard:
        students = shard(students, args.shard)
    output = refuse_earlier_run(args.output or default_run_folder())
    for problem in problems:
        print(f"note: {problem}")

    def progress(student, rows):
        print(f"graded {student.name}: {sum(r[2] for r in rows):g} / {sum(r[3] for r in rows):g}", flush=True)

    if args.no_sandbox:
        memory_mb = None
        print("note: --no-sandbox: student code runs with your privileges", flush=True)
    else:
        memory_mb = args.memory
        reason = sandbox_unavailable()
        if reason:
            raise UsageError(f"the sandbox for student code is unavailable: {reason}; grade on a machine "
                             "with it, or pass --no-sandbox to run student code with your privileges")
    staging = tempfile.TemporaryDirectory(prefix="executed-") if args.keep_executed else None
    keep = Path(staging.name) if staging else None
    results = grade_all(students, selected, args.timeout, args.jobs, memory_mb, progress, keep)
    grades, notes = [], []
    for student in students:
        for notebook, question, score, most, feedback in results[student.key]:
            grades.append({"student_id": student.roster_id, "student": student.name, "notebook": notebook,
                           "question": question, "score": f"{score:g}", "max_score": f"{most:g}",
                           "feedback": feedback})
        notes += [{"student_id": student.roster_id, "student": student.name, "note": note}
                  for note in student.notes]
    folder = write_run(output, grades, notes)
    kept = ""
    if staging:
        shutil.copytree(keep, folder / "executed")
        staging.cleanup()
        kept = " and executed/"
    print(f"wrote {folder}: grades.csv ({len(grades)} rows), students.csv, canvas.csv, moodle.csv, "
          f"notes.csv, feedback/{kept}")
    return 0


def cmd_merge(args):
    if not args.output:
        raise UsageError("name the merged run's folder with --output")
    folder = merge(args.runs, args.output)
    print(f"merged {len(args.runs)} runs into {folder}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Student notebooks and autograding for the course.")
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student notebooks (solutions removed)")
    student.add_argument("--chapters", nargs="+", metavar="CH", help="chapter stems (default: all)")
    student.add_argument("--output", default=str(ROOT / "_build" / "student"))
    grade = sub.add_parser("grade", help="grade a folder of submissions")
    grade.add_argument("submissions", nargs="?", default="")
    grade.add_argument("--roster", help="CSV with columns id,name[,folder]: every student gets a row")
    grade.add_argument("--chapters", nargs="+", metavar="CH",
                       help="the assigned chapters; a missing one scores zero "
                            "(default: every chapter anyone handed in)")
    grade.add_argument("--output", help="a new folder for this run (default: _build/grades/run-<time>)")
    grade.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                       help="students graded at once (default: the cores)")
    grade.add_argument("--shard", help="grade only slice i/N of the students (sorted), e.g. 1/4")
    grade.add_argument("--memory", type=int, default=4096, help="MB of address space per kernel (4096)")
    grade.add_argument("--keep-executed", action="store_true",
                       help="also save each executed notebook, outputs and written answers "
                            "included, hidden tests left out, as executed/<student>/<chapter>.ipynb "
                            "in the run folder")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code unconfined, with your privileges (not recommended)")
    merged = sub.add_parser("merge", help="join grading runs (shards, or chapters graded apart)")
    merged.add_argument("runs", nargs="*", help="run folders; for a student and chapter the last wins")
    merged.add_argument("--output", help="a new folder for the merged run")
    args = parser.parse_args(argv)
    commands = {"student": cmd_student, "grade": cmd_grade, "merge": cmd_merge}
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
