"""Benchmark, not a test: how long each notebook takes, and how much memory, run as a learner runs it.

Usage: python tools/bench.py [--notebooks-only] [NOTEBOOK ...]

Each notebook is executed in its own fresh process and kernel (as a learner opening it would),
timed, and its kernel's peak resident memory read. Then the cold and warm `make book` times
and the coursework tools' times are measured. Budgets are printed beside each figure; the
script reports, it does not fail.
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from book_toc import toc_notebooks

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_BUDGET_S = 20.0
BOOK_BUDGET_S = 90.0
STUDENT_BUDGET_S = 60.0
WARM_BUILD_BUDGET_S = 15.0


def run_one(path):
    """Execute one notebook in a fresh kernel; return wall seconds and the kernel's peak RSS in MB."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    seconds = time.perf_counter() - start
    # The kernel was this process's child and has been reaped: its peak RSS is in RUSAGE_CHILDREN.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb}


def measure(path):
    """run_one in a separate process, so each notebook's peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, "--run-one", str(path)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{path.name} failed to execute:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(cmd, **kwargs):
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return time.perf_counter() - start


def status(value, budget):
    return "ok" if value <= budget else "OVER BUDGET"


def bench_notebooks(paths):
    print(f"{'notebook':<42} {'time (s)':>9} {'peak MB':>8} {'budget (s)':>11}  status")
    total = 0.0
    for path in paths:
        r = measure(path)
        total += r["seconds"]
        print(f"{path.name:<42} {r['seconds']:9.1f} {r['peak_mb']:8.0f} {CHAPTER_BUDGET_S:11.0f}  "
              f"{status(r['seconds'], CHAPTER_BUDGET_S)}")
    print(f"{'whole book':<42} {total:9.1f} {'':>8} {BOOK_BUDGET_S:11.0f}  {status(total, BOOK_BUDGET_S)}")
    return total


def bench_build():
    # A cold build: no HTML, no executed notebooks, no cache (grades and student notebooks stay).
    for generated in ("html", "jupyter_execute", ".jupyter_cache", ".doctrees"):
        shutil.rmtree(ROOT / "_build" / generated, ignore_errors=True)
    cold = timed(["make", "--no-print-directory", "book"], cwd=ROOT)
    warm = timed(["make", "--no-print-directory", "book"], cwd=ROOT)
    print(f"{'make book, cold (no build, no cache)':<42} {cold:9.1f}")
    print(f"{'make book, warm (nothing changed)':<42} {warm:9.1f} {'':>8} {WARM_BUILD_BUDGET_S:11.0f}  "
          f"{status(warm, WARM_BUILD_BUDGET_S)}")


def bench_coursework(book_seconds):
    tool = ROOT / "tools" / "coursework.py"
    student = timed([sys.executable, tool, "student"], cwd=ROOT)
    print(f"{'make student (whole book)':<42} {student:9.1f} {'':>8} {STUDENT_BUDGET_S:11.0f}  "
          f"{status(student, STUDENT_BUDGET_S)}")
    import sandbox

    flags = ["--no-sandbox"] if sandbox.unavailable() else []
    with tempfile.TemporaryDirectory() as tmp:
        # A class of four who hand in the reference notebooks: full, passing submissions.
        for name in ("ada", "grace", "emmy", "sofia"):
            (Path(tmp) / "subs" / name).mkdir(parents=True)
            for path in toc_notebooks():
                shutil.copy(path, Path(tmp) / "subs" / name / path.name)
        submissions = 4 * len(toc_notebooks())
        seconds = {}
        for jobs in (1, 2):
            seconds[jobs] = timed([sys.executable, tool, "grade", Path(tmp) / "subs", "--jobs", str(jobs),
                                   "--output", Path(tmp) / f"run{jobs}", *flags], cwd=ROOT)
    budget = 2 * book_seconds
    print(f"{'grade one full submission (serial)':<42} {seconds[1] / 4:9.1f} {'':>8} {budget:11.0f}  "
          f"{status(seconds[1] / 4, budget)}  (budget: twice the book's execution time)")
    sandboxed = "unsandboxed: bubblewrap missing" if flags else "sandboxed"
    for jobs in (1, 2):
        print(f"{f'grading throughput, JOBS={jobs}':<42} {60 * submissions / seconds[jobs]:9.1f} "
              f"chapter-submissions per minute ({sandboxed})")
    speedup = seconds[1] / seconds[2]
    print(f"{'parallel speed-up, JOBS=2 over JOBS=1':<42} {speedup:9.2f}  (target: 1.7 or more)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to time (default: the whole book)")
    parser.add_argument("--notebooks-only", action="store_true", help="skip the build and coursework timings")
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(args.run_one)))
        return 0
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"not a notebook: {path}")
    book_seconds = bench_notebooks(args.notebooks or toc_notebooks())
    if not (args.notebooks_only or args.notebooks):
        bench_build()
        bench_coursework(book_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
