"""Grading: each student's notebooks run (sandboxed) in an nbgrader course directory of their own,
so students can be graded in parallel (or on several machines) with the same result as one by one.
nbgrader executes the notebook; the points come from judge.py, which runs the instructor's test
cells in a clean process on the values the answers returned (a student's code cannot reach it)."""

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import judge
from claims import BLAS_THREAD_VARIABLES
from course import nbgrader_api, release
from judge import question_of
from submissions import file_key


def parts_of(source):
    """[(grade_id, question, points, label)] for every graded test cell of the instructor's notebook;
    the label is the cell's first line when it is a `# Part ...` comment."""
    import nbformat

    parts = []
    for cell in judge.test_cells(nbformat.read(source, as_version=4)):
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        first = cell.source.splitlines()[0].lstrip("# ").strip() if cell.source.startswith("# Part") else ""
        points = float(cell.metadata["nbgrader"].get("points", 0))
        parts.append((grade_id, question_of(grade_id), points, first))
    return parts


def questions_of(path):
    """{question: max points} for every autograded question of a notebook (its parts summed)."""
    points = {}
    for _, question, most, _ in parts_of(path):
        points[question] = points.get(question, 0.0) + most
    return points


def release_once(selected, template):
    """Release the chosen chapters into `template`, a course directory every student's course copies
    (nbgrader's release takes about a second per chapter, the same for every student); returns
    {chapter: {question: max points}}, read from that release."""
    released = release(nbgrader_api(template), template, selected)
    return {name: questions_of(path) for name, path in released.items()}


def copy_release(template, course):
    """A student's course directory starts as a copy of the released template (database included)."""
    for folder in ("source", "release"):
        shutil.copytree(template / folder, course / folder)
    shutil.copy2(template / "gradebook.db", course / "gradebook.db")


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


def answer_cells(notebook):
    """({question: source of the student's answer cell}, {question: "ename: evalue"} for the answer
    cells that raised), from the notebook as it ran: the sources for the judge's static checks, the
    errors for the feedback."""
    import nbformat

    sources, errors = {}, {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            question = question_of(meta["grade_id"])
            sources[question] = cell.source
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    errors[question] = f"{out.get('ename')}: {out.get('evalue', '')}"[:200]
    return sources, errors


def zeros(maximum, reason):
    """Zero rows, one per question, all with the same reason."""
    return [(question, 0.0, most, reason) for question, most in maximum.items()]


def execute(api, course, name, source, submitted):
    """Run one submission, instrumented, in the student's kernel: (the executed notebook, the file of
    recorded answers, None), or (None, None, the reason it scores zero)."""
    import nbformat

    reason = precheck(submitted)
    if reason:
        return None, None, reason
    target = course / "submitted" / "student" / name
    target.mkdir(parents=True)
    # Only the notebook, instrumented: no shadowing modules, the instructor's test cells restored.
    records = course / "autograded" / f"{name}.records.jsonl"  # writable by the sandboxed kernel
    program = judge.instrument(nbformat.read(submitted, as_version=4), nbformat.read(source, as_version=4),
                               records)
    nbformat.write(program, target / f"{name}.ipynb")
    previous = os.umask(0)  # the folders nbgrader makes must be writable by the sandboxed kernel
    try:
        result = api.autograde(name, "student", force=True, create=True)
    finally:
        os.umask(previous)
    if not result["success"]:
        text = f"{result['error'] or ''}\n{result['log'] or ''}"
        if "DeadKernel" in text or "Kernel died" in text:
            return None, None, "the kernel stopped while running the notebook (did the code exit or crash?)"
        first = (text.strip() or "nbgrader failed").splitlines()[-1]
        return None, None, f"could not be graded: {first[:300]}"
    return course / "autograded" / "student" / name / f"{name}.ipynb", records, None


@functools.cache
def warm_judge():
    """Load, once per grading process, the libraries the chapters' setup cells import, so that each
    judge forked from it starts warm: a judge started afresh spent most of its time importing them.
    This process never runs student code (the sandboxed kernel does), so its forks are clean. NumPy
    loads with one BLAS thread, so that the process stays single-threaded and safe to fork; the
    environment (which the libraries change too) is restored after, as the kernels this process
    starts inherit it."""
    saved = dict(os.environ)
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))
    try:
        import numpy  # noqa: F401
        import scipy.optimize  # noqa: F401
        import sklearn.linear_model  # noqa: F401
    finally:
        os.environ.clear()
        os.environ.update(saved)
    import matplotlib

    matplotlib.use("Agg")  # this process only; the kernels keep their own backend
    import matplotlib.pyplot  # noqa: F401


def last_line(stderr):
    """The last line a failed judge wrote (its exception), for the grade's feedback."""
    return (stderr.strip().splitlines() or ["it stopped without a message"])[-1]


def runs_other_threads():
    """Whether this process runs a thread besides the calling one. /proc/self/task also lists the
    threads that `threading` does not know of (pytest-xdist's worker starts one with _thread).
    Without /proc, it answers yes: the judge then starts afresh."""
    try:
        return len(os.listdir("/proc/self/task")) > 1
    except OSError:
        return True


def run_judge(jobs, timeout):
    """The judge's verdicts for a student's executed chapters, from a clean process: on Linux, a
    fork of this one (warm_judge), killed after `timeout` seconds. A fresh interpreter elsewhere
    and wherever this process runs other threads (the tests' workers), since a fork copies only
    the forking thread and could be left waiting on a lock another thread held."""
    if not jobs:
        return {}
    if sys.platform != "linux":
        return run_judge_afresh(jobs, timeout)
    warm_judge()
    if runs_other_threads():
        return run_judge_afresh(jobs, timeout)
    with tempfile.TemporaryDirectory(prefix="judge-") as tmp:
        verdicts, errors = Path(tmp) / "verdicts.json", Path(tmp) / "stderr.txt"
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the judge: its output goes to files, never to the grader's terminal
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # not the grader's handlers and clean-ups
            signal.alarm(int(timeout) + 5)  # its own limit, should the grader be killed
            status = 1
            try:
                with open(os.devnull, "w") as quiet, open(errors, "w") as log:
                    os.dup2(quiet.fileno(), 1)
                    os.dup2(log.fileno(), 2)
                os.chdir(Path(jobs[0]["source"]).parent)
                verdicts.write_text(json.dumps(judge.judge_chapters(jobs)))
                status = 0
            except BaseException:  # noqa: BLE001 - reported by the parent, from the log
                traceback.print_exc()
            finally:
                os._exit(status)
        done = (0, 0)
        try:
            deadline = time.monotonic() + timeout
            while not (done := os.waitpid(pid, os.WNOHANG))[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the judge took longer than {timeout} s")
                time.sleep(0.02)
        finally:
            if not done[0]:  # timed out, or this process was interrupted: the judge goes too
                with contextlib.suppress(ProcessLookupError, ChildProcessError):  # already reaped
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(done[1])
        if code < 0:
            raise RuntimeError(f"the judge was killed by signal {-code} ({signal.strsignal(-code)})")
        if code != 0:
            raise RuntimeError(f"the judge failed: {last_line(errors.read_text())}")
        return json.loads(verdicts.read_text())


def run_judge_afresh(jobs, timeout):
    """run_judge in a new interpreter (`python judge.py`), which imports everything itself."""
    environment = dict(os.environ, MPLBACKEND="Agg", **dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))
    result = subprocess.run([sys.executable, str(Path(judge.__file__))], input=json.dumps(jobs),
                            capture_output=True, text=True, timeout=timeout, env=environment,
                            cwd=Path(jobs[0]["source"]).parent)
    if result.returncode != 0:
        raise RuntimeError(f"the judge failed: {last_line(result.stderr)}")
    return json.loads(result.stdout)


def score(source, maximum, verdicts, errors):
    """(question, score, max, feedback) rows from the judge's verdict on each graded part."""
    scores, notes = dict.fromkeys(maximum, 0.0), {q: [] for q in maximum}
    for grade_id, question, points, label in parts_of(source):
        if question not in scores:
            continue
        passed, message = verdicts.get(grade_id, (False, "not judged"))
        if passed:
            scores[question] += points
        else:
            notes[question].append(f"{label} — {message}" if label else message)
    rows = []
    for question, most in maximum.items():
        if scores[question] >= most:
            rows.append((question, scores[question], most, "all checks passed"))
            continue
        failed = list(dict.fromkeys(notes[question]))
        untouched = errors.get(question, "").startswith("NotImplementedError")
        if untouched or all(m.startswith("not attempted") for m in failed):
            failed = ["not attempted (the answer still raises NotImplementedError)"]
        elif question in errors:
            failed.insert(0, f"the answer cell raised {errors[question]}")
        rows.append((question, scores[question], most, "; ".join(failed)))
    return rows


def keep_executed(executed, destination):
    """Save a student's executed chapter (outputs in place, the recorder's cells taken out)."""
    import nbformat

    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(judge.without_recorder(nbformat.read(executed, as_version=4)), destination)


def grade_student(student, selected, points, template, timeout, memory_mb, keep=None):
    """Rows (chapter, question, score, max, feedback) for every assigned chapter of one student, in
    a copy of the `template` course (release_once); `memory_mb` caps the sandboxed kernel (None: no
    sandbox); with `keep`, a folder, each executed chapter is saved as
    keep/<student label>/<chapter>.ipynb."""
    handed_in = {name: path for name, path in selected.items() if name in student.files}
    graded, jobs, errors = {}, [], {}
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        if handed_in:
            copy_release(template, course)
        api = nbgrader_api(course, timeout=timeout, sandbox_memory_mb=memory_mb) if handed_in else None
        for name in selected:
            if name not in handed_in:
                graded[name] = zeros(points[name], "no submission")
                continue
            try:
                executed, records, reason = execute(api, course, name, selected[name], student.files[name])
            except Exception as exc:  # one bad submission must never stop the others
                executed, records, reason = None, None, f"grading failed: {type(exc).__name__}: {exc}"[:300]
            if reason:
                graded[name] = zeros(points[name], reason)
                continue
            if keep is not None:
                label = file_key(student.roster_id or student.name)  # as the feedback files are named
                keep_executed(executed, Path(keep) / label / f"{name}.ipynb")
            answers, errors[name] = answer_cells(executed)
            jobs.append({"chapter": name, "source": str(selected[name]), "answers": answers,
                         "records": str(records)})
        try:
            verdicts = run_judge(jobs, timeout=60 + 10 * timeout)
        except Exception as exc:  # noqa: BLE001 - reported in the grade, never a crash
            verdicts, failure = {}, f"grading failed: {type(exc).__name__}: {exc}"[:300]
            graded.update({job["chapter"]: zeros(points[job["chapter"]], failure) for job in jobs})
        for name, chapter_verdicts in verdicts.items():
            graded[name] = score(selected[name], points[name], chapter_verdicts, errors[name])
    return [(name, *row) for name in selected for row in graded[name]]


def grade_all(students, selected, timeout, jobs, memory_mb, progress=print, keep=None):
    """{student key: rows} for every student, `jobs` students at a time; the result does not depend
    on `jobs` (each student is graded alone, in a course directory of its own)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="nbgrader-release-") as tmp:
        template = Path(tmp)
        points = release_once(selected, template)
        arguments = (selected, points, template, timeout, memory_mb, keep)
        if jobs <= 1:
            for student in students:
                results[student.key] = grade_student(student, *arguments)
                progress(student, results[student.key])
            return results
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {s.key: pool.submit(grade_student, s, *arguments) for s in students}
            for student in students:
                results[student.key] = futures[student.key].result()
                progress(student, results[student.key])
    return results
