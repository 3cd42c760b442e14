"""The project tooling in tools/: the benchmark, the book's Sphinx extension, code style, the
grader's judge process and the gradebook revision it stamps."""

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_project_python_passes_ruff():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "conftest.py", "tools", "tests"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def write_notebook(path, source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nb, path)
    return path


def test_bench_measures_a_notebook_in_a_fresh_kernel(tmp_path):
    path = write_notebook(tmp_path / "tiny.ipynb", "x = bytearray(50_000_000)")
    out = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), "--run-one", str(path)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seconds"] > 0
    assert result["peak_mb"] > 50, "the kernel held a 50 MB buffer: its peak must show it"


def test_bench_reports_seconds_and_calibration_units(tmp_path):
    paths = [write_notebook(tmp_path / f"tiny{i}.ipynb", "1 + 1") for i in (1, 2)]
    out = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), "--repeats", "1",
                          "--calibration-rounds", "1", *map(str, paths)],
                         capture_output=True, text=True, check=True).stdout
    for label in ("calibration before", "calibration between notebooks", "calibration after", "unit: "):
        assert label in out, f"the report lacks {label!r}"
    runs = {label: [float(r) for r in out.split(f"calibration {label}: ")[1].split(" s (")[0].split(", ")]
            for label in ("before", "between notebooks", "after")}
    assert len(runs["between notebooks"]) == 1, "one calibration run between two notebooks"
    unit = float(out.split("unit: ")[1].split()[0])
    assert abs(unit - statistics.median(sum(runs.values(), []))) <= 0.011, (
        "the unit is the median of every calibration run")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("tiny")}
    assert set(rows) == {"tiny1.ipynb", "tiny2.ipynb"}
    for row in rows.values():
        seconds, units, budget = (float(v) for v in row[4:7])  # after "(N MB peak)"
        # The table rounds seconds to 0.1 and units to 0.01, the unit line to 0.01 s: units must be
        # seconds over the unit within what that rounding allows.
        low, high = (seconds - 0.05) / (unit + 0.005) - 0.005, (seconds + 0.05) / (unit - 0.005) + 0.005
        assert low <= units <= high, "units must be seconds over the unit"
        # a shortened calibration's units are not the budgets': no verdict, and the report says so
        assert budget > 0 and row[7:9] == ["no", "verdict"]
    assert "these units are not the budgets', so no verdicts" in out
    # two notebooks are not the book: their median and sum are shown without a budget
    assert "median (these notebooks, no budget)" in out
    assert "these notebooks, one after another" in out and "whole book" not in out


def test_bench_verdicts_judge_both_sides_of_a_budget_and_flag_the_noise(capsys):
    import bench

    report = bench.Report(unit=2.0)
    assert report.verdict(1.0, 2.0) == "ok" and report.verdict(3.0, 2.0) == "OVER BUDGET"
    assert report.verdict(1.9, 2.0) == "ok (one run, within 10 %: at the budget, within the noise)"
    assert report.verdict(2.1, 2.0).startswith("OVER BUDGET (one run, within 10 %")
    assert report.verdict(2.1, 2.0, single_run=False).startswith("OVER BUDGET (a median, within")
    assert report.verdict(1.0, None) == ""
    assert report.row("x", 6.0, 2.0) == 3.0 and "OVER BUDGET" in capsys.readouterr().out
    shortened = bench.Report(unit=2.0, comparable=False)
    assert shortened.verdict(3.0, 2.0) == "no verdict"
    assert shortened.verdict(3.0, 2.0, unit_free=True) == "OVER BUDGET"


def test_bench_judges_the_cold_build_against_its_target_in_seconds(monkeypatch, capsys):
    """The cold build's target (0.6 x the notebooks' sum + Sphinx alone) is in this run's seconds:
    judged on both sides of it, flagged within the noise, and judged at a shortened calibration."""
    import bench

    def judge(cold, comparable=True):
        seconds = iter([cold, 10.0, 1.0])  # cold build, Sphinx alone, warm build
        monkeypatch.setattr(bench, "timed", lambda cmd, **kwargs: next(seconds))
        monkeypatch.setattr(bench.shutil, "rmtree", lambda *args, **kwargs: None)
        bench.bench_build(bench.Report(unit=2.0, comparable=comparable), book_seconds=50.0)
        row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cold build")]
        assert len(row) == 1 and "40.0" in row[0].split(), "target: 0.6 x 50 + 10 = 40 s"
        return row[0]

    assert "  ok (cold = 0.60 x" in judge(30.0)
    assert "OVER BUDGET (cold = 1.00 x" in judge(50.0)
    assert "OVER BUDGET (one run, within 10 %" in judge(42.0)
    assert "  ok (one run, within 10 %" in judge(38.0, comparable=False)


def test_bench_gives_verdicts_at_its_own_calibration_and_medians_repeated_runs(tmp_path, monkeypatch,
                                                                               capsys):
    """bench's main, with the timing stubbed: verdicts at the calibration the budgets were set with,
    none at a shortened one; --notebook-runs reports each notebook's median."""
    import bench

    paths = [write_notebook(tmp_path / f"tiny{i}.ipynb", "1 + 1") for i in (1, 2)]
    rounds_seen = []
    runs = iter([(9.0, 10.0), (2.0, 30.0), (1.0, 20.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0)])

    def fake_calibrate(repeats, rounds):
        rounds_seen.append(rounds)
        return [1.0] * repeats

    def fake_measure(path):
        seconds, peak_mb = next(runs)
        return {"seconds": seconds, "peak_mb": peak_mb}

    monkeypatch.setattr(bench, "calibrate", fake_calibrate)
    monkeypatch.setattr(bench, "measure", fake_measure)
    assert bench.main(["--repeats", "1", "--notebook-runs", "3", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert set(rounds_seen) == {bench.CALIBRATION_ROUNDS}
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("tiny")}
    # the median of 9, 2 and 1 s (not the first, last or largest), the largest peak; 2.00 is within
    # 10 % of 1.82, which a median does not settle
    assert rows["tiny1.ipynb"][1:9] == ["(30", "MB", "peak)", "2.0", "2.00", "1.82", "OVER", "BUDGET"]
    assert "(a median, within 10 %" in " ".join(rows["tiny1.ipynb"])
    assert rows["tiny2.ipynb"][4:] == ["1.0", "1.00", "1.82", "ok"]
    assert "each notebook: the median of 3 runs, the largest peak" in out
    runs = iter([(1.7, 1.0), (1.0, 1.0)])  # by default one run each: 1.70 u is flagged
    assert bench.main(["--repeats", "1", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "ok (one run, within 10 %" in out and "each notebook: the median" not in out
    monkeypatch.setattr(bench, "measure", lambda path: {"seconds": 1.0, "peak_mb": 1.0})
    bench.main(["--repeats", "1", "--calibration-rounds", "1", *map(str, paths)])
    assert "no verdict" in capsys.readouterr().out and rounds_seen[-1] == 1


def test_the_budgets_name_the_calibration_they_were_measured_with():
    """Changing the calibration notebook changes every budget's meaning: re-measure them, then
    update CALIBRATION_DIGEST."""
    import hashlib

    import bench

    digest = hashlib.sha256("\n".join(bench.calibration_sources()).encode()).hexdigest()[:16]
    assert digest == bench.CALIBRATION_DIGEST, "the calibration changed: re-set the budgets"


def test_the_calibration_times_a_chapter_like_notebook(tmp_path, monkeypatch):
    """What calibrate() hands to measure() (a fresh process and kernel, tested above) is a notebook
    that fits and draws three figures inline."""
    import bench
    from nbclient import NotebookClient

    timed = []

    def run_and_inspect(path):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3").execute()
        timed.append(nb)
        return {"seconds": 1.0, "peak_mb": 0.0}

    monkeypatch.setattr(bench, "measure", run_and_inspect)
    assert bench.calibrate(1, 1) == [1.0]
    (nb,) = timed
    figures = [o for cell in nb.cells for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 3, f"three inline figures expected, found {len(figures)}"
    assert any("Lasso(" in cell.source and "np.linalg.solve" in cell.source for cell in nb.cells)


def test_bench_rejects_what_is_not_a_notebook(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    out = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), str(tmp_path / "notes.txt")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not a notebook" in out.stderr and "Traceback" not in out.stderr


def test_downloads_lose_hidden_tests_only(tmp_path):
    import book_html  # tools/ is on sys.path (conftest.py)

    sources = tmp_path / "_sources" / "book"
    sources.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS"),
    ])
    nbformat.write(nb, sources / "ch.ipynb")

    class App:
        outdir = str(tmp_path)

        class builder:
            format = "html"

    book_html._reader_notebooks(App, None)
    kept = nbformat.read(sources / "ch.ipynb", as_version=4).cells
    assert [c.source for c in kept] == ["x = 1"]
    shutil.rmtree(sources)


def test_launch_buttons_follow_the_repository_url():
    import book_html

    class Config:
        def __init__(self, options):
            self.html_theme_options = options

    without = Config({"repository_url": "", "launch_buttons": {"binderhub_url": "", "colab_url": ""}})
    book_html._launch_buttons(None, without)
    assert without.html_theme_options["launch_buttons"] == {"binderhub_url": "", "colab_url": ""}

    with_repo = Config({"repository_url": "https://github.com/o/r", "launch_buttons": {"colab_url": ""}})
    book_html._launch_buttons(None, with_repo)
    buttons = with_repo.html_theme_options["launch_buttons"]
    assert buttons["binderhub_url"] == "https://mybinder.org"
    assert buttons["colab_url"] == "https://colab.research.google.com"


def test_solution_markers_are_dropped_from_rendered_code():
    import book_html
    from docutils import nodes

    code = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    doctree = nodes.section()
    doctree += nodes.literal_block(code, code, language="ipython3")
    book_html._drop_solution_markers(None, doctree)
    (block,) = doctree.findall(nodes.literal_block)
    assert block.astext() == "def f(x):\n    return 2 * x\n"
    assert block["language"] == "ipython3"


def test_bibliography_plugins_are_looked_up_once_with_the_same_answers(monkeypatch):
    import book_html
    import pybtex.plugin
    import sphinxcontrib.bibtex.plugin as bibtex_plugin

    calls = []

    def counting(lookup):
        def counted(**query):
            calls.append(query)
            return lookup(**query)
        return counted

    for module, name in ((pybtex.plugin, "entry_points"), (bibtex_plugin, "_entry_points")):
        monkeypatch.setattr(module, name, counting(getattr(module, name)))  # restored after the test

    def answers():
        return (pybtex.plugin.find_plugin("pybtex.backends", "plaintext"),
                pybtex.plugin.find_plugin("pybtex.style.formatting", "plain"),
                sorted(pybtex.plugin.enumerate_plugin_names("pybtex.style.formatting")),
                bibtex_plugin.find_plugin("sphinxcontrib.bibtex.style.referencing", "author_year"))

    class App:  # what book_html.setup asks of Sphinx
        def connect(self, *args, **kwargs):
            pass

        add_css_file = add_directive = connect

    before = answers()
    book_html.setup(App())
    wrapped = pybtex.plugin.entry_points, bibtex_plugin._entry_points
    book_html.setup(App())  # a second build in the same process wraps nothing twice
    assert (pybtex.plugin.entry_points, bibtex_plugin._entry_points) == wrapped
    calls.clear()
    first = answers()
    looked_up = len(calls)
    assert answers() == first == before and looked_up > 0
    assert len(calls) == looked_up, "each lookup must reach the installed entry points only once"
    positional = bibtex_plugin._entry_points("sphinxcontrib.bibtex.style.referencing", "author_year")
    assert [e.name for e in positional] == ["author_year"]


@pytest.mark.parametrize("args, message", [
    (["/no/such/book"], "not a book's root"),
    ([".", "--jobs", "0"], "--jobs must be at least 1"),
])
def test_execute_book_rejects_bad_input(args, message):
    out = subprocess.run([sys.executable, str(ROOT / "tools/execute_book.py"), *args],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def tiny_chapter(path):
    """A chapter with an introduction, a core and a going-deeper section, and exercises."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[
        md("# Tiny\n\nfour words of prose"),                                         # 6 words
        code("x = 1\n\ny = 2\n"),                                                    # 2 lines
        md("(tiny-core)=\n## 1. Core\n\n```{note}\n:class: dropdown\nthree more words\n```"),  # 6 words
        code("z = 3"),                                                               # 1 line
        md("(tiny-deep)=\n## 2. Deep\n\nsome words here"),                           # 6 words
        code("a = 1\nb = 2\nc = 3"),                                                 # 3 lines
        md("## Exercises\n\nthese words are not reading"),
        code("ignored = True"),
        md("## Further reading\n\nnor these"),
    ])
    nbformat.write(nb, path)
    return path


def test_reading_time_counts_a_tiny_chapter(tmp_path):
    import reading_time  # tools/ is on sys.path (conftest.py)

    path = tiny_chapter(tmp_path / "tiny.ipynb")
    whole, core, _ = reading_time.chapter_counts(path, {"tiny-deep"})
    assert (whole.words, whole.lines, whole.cells) == (18, 6, 3)
    assert (core.words, core.lines, core.cells) == (12, 3, 2)
    assert whole.minutes == 18 / 150 + (5 * 6 + 15 * 3) / 60
    assert core.minutes == 12 / 150 + (5 * 3 + 15 * 2) / 60
    out = subprocess.run([sys.executable, str(ROOT / "tools/reading_time.py"), str(path),
                          "--exclude", "tiny-deep", "--markdown"], capture_output=True, text=True, check=True)
    assert "| {doc}`tiny` | 12 / 18 | 3 / 6 | 2 / 3 | 1 / 1 |" in out.stdout


def test_reading_time_skips_marked_sections_and_removed_cells(tmp_path):
    import reading_time

    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    folded, removed = code("assert True\nassert 1"), code("glue('x', 1)")
    folded.metadata["tags"], removed.metadata["tags"] = ["hide-input"], ["remove-cell"]
    nb = nbformat.v4.new_notebook(cells=[
        md("# Tiny\n\none two"),                                  # 3 words
        code("x = 1"), folded, removed,                            # 3 lines, 2 cells on the page
        md("(tiny-deep)=\n## 2. Deep (going deeper)\n\nmore"),     # 6 words, marked
        code("y = 2\nz = 3"),                                      # 2 lines
    ])
    nbformat.write(nb, tmp_path / "t.ipynb")
    whole, core, _ = reading_time.chapter_counts(tmp_path / "t.ipynb")
    assert (whole.words, whole.lines, whole.cells) == (10, 5, 3)
    assert (core.words, core.lines, core.cells) == (4, 3, 2)


@pytest.mark.parametrize("name, message", [("notes.txt", "not a notebook"),
                                           ("broken.ipynb", "not a notebook"),
                                           ("missing.ipynb", "no such file")])
def test_reading_time_rejects_bad_input(tmp_path, name, message):
    if name != "missing.ipynb":
        (tmp_path / name).write_text("hello")
    out = subprocess.run([sys.executable, str(ROOT / "tools/reading_time.py"), str(tmp_path / name)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_builds_of_one_book_run_one_at_a_time(tmp_path):
    (tmp_path / "_config.yml").write_text("title: t\n")
    log = tmp_path / "log.txt"
    # Each "build" writes start, sleeps, writes end: interleaved lines would mean two at once.
    build = (f"import time; p = {str(log)!r}; open(p, 'a').write('start\\n'); time.sleep(1); "
             "open(p, 'a').write('end\\n')")
    command = [sys.executable, str(ROOT / "tools/one_build.py"), str(tmp_path), sys.executable, "-c", build]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [run.communicate(timeout=60)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    assert log.read_text().split() == ["start", "end", "start", "end"], "two builds of one book overlapped"
    assert sum("waiting for another build of this book" in e for e in errors) == 1, errors


@pytest.mark.parametrize("args, message", [
    ([], "Usage: python tools/one_build.py BOOK_ROOT COMMAND"),
    (["/no/such/book", "true"], "not a book's root"),
    (["{book}", "no-such-command-here"], "no such command: no-such-command-here"),
])
def test_one_build_rejects_bad_input(tmp_path, args, message):
    # A throw-away book root: the real one's lock may be held by a build in another test.
    (tmp_path / "_config.yml").write_text("title: t\n")
    args = [arg.replace("{book}", str(tmp_path)) for arg in args]
    out = subprocess.run([sys.executable, str(ROOT / "tools/one_build.py"), *args], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_make_test_keeps_a_grouped_file_on_one_worker(tmp_path):
    """conftest.py's scheduler: under `--dist loadgroup`, every test of a file that declares an
    xdist_group runs on one worker, while the other files' tests still spread over both."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / "conftest.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('project_conftest', {str(ROOT / 'conftest.py')!r})\n"
        "project = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(project)\n"
        "pytest_xdist_make_scheduler = project.pytest_xdist_make_scheduler\n")
    log = tmp_path / "workers.txt"
    tests = ("import os, time\n\nimport pytest\n\n{mark}\n\n"
             "@pytest.mark.parametrize('i', range(8))\n"
             "def test_note(i):\n"
             "    time.sleep(0.2)\n"
             f"    with open({str(log)!r}, 'a') as f:\n"
             "        f.write(f\"{{__name__}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n\")\n")
    (tmp_path / "tests" / "test_grouped.py").write_text(
        tests.format(mark='pytestmark = pytest.mark.xdist_group("one")'))
    (tmp_path / "tests" / "test_loose.py").write_text(tests.format(mark=""))
    result = subprocess.run([sys.executable, "-m", "pytest", "tests", "-n", "2", "--dist", "loadgroup",
                             "-p", "no:cacheprovider", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    workers = {}
    for line in log.read_text().splitlines():
        module, worker = line.split()
        workers.setdefault(module.rsplit(".", 1)[-1], set()).add(worker)
    assert len(workers["test_grouped"]) == 1, f"a grouped file ran on several workers: {workers}"
    assert workers["test_loose"] | workers["test_grouped"] == {"gw0", "gw1"}, workers


# The grader's judge is a fork of the grading process (tools/grading.py); the tests' workers run
# threads, so run_judge takes its other path there: these run it in a single-threaded process.
JUDGE_PROBE = """
import _thread, json, os, sys, time
sys.path.insert(0, sys.argv[1])
import grading, judge
grading.run_judge_afresh = lambda jobs, timeout: {"judged": "afresh"}
if sys.argv[2] == "hangs":
    judge.judge_chapters = lambda jobs: time.sleep(60)
elif sys.argv[2] == "prints":
    judge.judge_chapters = lambda jobs: print("noise") or {"x": {"a-tests": [True, "passed"]}}
elif sys.argv[2] == "threaded":  # a thread that `threading` does not list, as pytest-xdist's
    _thread.start_new_thread(time.sleep, (60,))
elif sys.argv[2] == "killed":
    judge.judge_chapters = lambda jobs: os.kill(os.getpid(), 9)
before = dict(os.environ)
grading.warm_judge()
assert dict(os.environ) == before, "warm_judge must leave the environment the kernels inherit alone"
try:
    print(json.dumps(grading.run_judge([{"chapter": "x", "source": sys.argv[3]}], timeout=2)))
except RuntimeError as exc:
    print(f"RuntimeError: {exc}")
"""


@pytest.mark.parametrize("behaviour,expected", [
    ("hangs", "RuntimeError: the judge took longer than 2 s"),
    ("prints", '{"x": {"a-tests": [true, "passed"]}}'),
    ("fails", "RuntimeError: the judge failed: KeyError: 'answers'"),
    ("threaded", '{"judged": "afresh"}'),
    ("killed", "RuntimeError: the judge was killed by signal 9 (Killed)"),
])
def test_the_judge_is_timed_out_kept_quiet_and_never_forked_from_threads(tmp_path, behaviour, expected):
    result = subprocess.run([sys.executable, "-c", JUDGE_PROBE, str(ROOT / "tools"), behaviour,
                             str(tmp_path / "chapter.ipynb")], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == expected, result.stdout + result.stderr


def test_new_gradebooks_get_alembics_revision_without_an_alembic_process(tmp_path, monkeypatch):
    """Once the tools have made an nbgrader API (course.nbgrader_api), a new gradebook is stamped with
    the revision nbgrader's own lookup (a fresh `alembic heads` process) reports, without nbgrader's
    `alembic heads` call being made."""
    import course
    import nbgrader.api
    from sqlalchemy import text

    course.nbgrader_api(tmp_path / "course")

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(nbgrader.api.sp, "check_output", no_process)
    with nbgrader.api.Gradebook(f"sqlite:///{tmp_path / 'new.db'}") as gradebook:
        stamped = gradebook.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # it runs `alembic` by name
    reported = subprocess.run(
        [sys.executable, "-c", "import nbgrader.api; print(nbgrader.api.get_alembic_version())"],
        capture_output=True, text=True, env={**os.environ, "PATH": path}, timeout=60)
    assert reported.returncode == 0, reported.stderr[-2000:]
    assert stamped == reported.stdout.split()[-1]
