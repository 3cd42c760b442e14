"""Checks that can fail: every notebook holds at another seed, and its wrong-world mutants are stopped.

The harness itself is tested first, on tiny notebooks, so that a green run of the book's mutants
means what it says: a NameError, a timeout, a check that edits itself or the wrong claim never
counts as a kill, and a claim that fails at another seed is reported with its cell.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import claims  # tools/ is on sys.path (conftest.py)
import nbformat
import pytest
from book_toc import toc_notebooks

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "claims.py"
OTHER_SEED = 1          # make test runs each notebook at its own seed (nbval) and at this one, with mutants
MIN_MUTANTS = 6
NOTEBOOKS = toc_notebooks()


HARD_LIMIT_S = 900  # a run stuck where claims.py's own time limits cannot reach (C code) fails, not hangs
RUN_TIMEOUT_S = 120  # claims.py's limit per run in the chapter tests: five loopers fit in HARD_LIMIT_S


def kill_session(process):
    """Kill the session `process` leads (it and whatever it started), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(*args, limit=None, counted_from=None):
    """claims.py in a session of its own, so that a run past its limit (HARD_LIMIT_S unless given)
    is killed with every process it forked. With `counted_from`, a path, the limit counts from the
    moment that file appears, or from HARD_LIMIT_S on if it never does (the tests of the limit itself
    need not wait for the imports)."""
    limit = HARD_LIMIT_S if limit is None else limit
    command = [sys.executable, str(TOOL), *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               start_new_session=True)
    started = began = time.monotonic()
    try:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=0.5)  # retried without losing output
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                waiting = counted_from is not None and not Path(counted_from).exists()
                if waiting and now - began < HARD_LIMIT_S:
                    started = now
                elif now - started > limit:
                    kill_session(process)
                    stdout, stderr = process.communicate()
                    pytest.fail(f"claims.py {' '.join(map(str, args))} was killed after {now - began:.0f} s "
                                f"(its limit {limit} s, counted from {counted_from or 'its start'}, or from "
                                f"{HARD_LIMIT_S} s on if that never appears); "
                                f"its output so far:\n{stdout[-3000:]}{stderr[-3000:]}")
    finally:  # also on Ctrl-C, which the session of its own no longer receives, and for stray forks
        kill_session(process)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def write_notebook(path, *sources, markdown=()):
    """A notebook of code cells; `markdown` holds (position, text) pairs inserted before them."""
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    for position, text in sorted(markdown, reverse=True):
        cells.insert(position, nbformat.v4.new_markdown_cell(text))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


SETUP = "import numpy as np\nSEED = 0\nrng = np.random.default_rng(SEED)"


@pytest.fixture
def toy(tmp_path):
    """A two-section notebook whose claims are true at every seed."""
    return write_notebook(
        tmp_path / "toy.ipynb",
        SETUP,
        "x = rng.standard_normal(10_000)\nmean = x.mean()",
        "assert abs(mean) < 0.1, 'the sample mean is near zero'",
        "total = 2 + 2",
        "assert total == 4, 'two and two make four'",
        markdown=[(0, "## Setup"), (1, "## 1. Means"), (4, "## 2. Sums")],
    )


def mutant_report(tmp_path, notebook, toml_text, *extra):
    (tmp_path / "m.toml").write_text(toml_text)
    result = run("mutants", notebook, "--mutants", tmp_path / "m.toml", "--json", *extra)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)[0]


def mutant(name, find, replace, expect):
    return (f"[[mutant]]\nname = {name!r}\nmistake = 'a test'\nfind = '''\n{find}\n'''\n"
            f"replace = '''\n{replace}\n'''\nexpect = {expect!r}\n\n")


def test_harness_counts_only_assertion_errors_of_the_intended_check(tmp_path, toy):
    toml = (mutant("biased", "mean = x.mean()", "mean = x.mean() + 1", "near zero")
            + mutant("typo", "mean = x.mean()", "mean = x.maen()", "near zero")
            + mutant("wrong-claim", "total = 2 + 2", "total = 5", "near zero")
            + mutant("harmless", "total = 2 + 2", "total = 4", "make four"))
    code, report = mutant_report(tmp_path, toy, toml)
    verdicts = {m["name"]: m["verdict"] for m in report["mutants"]}
    assert code == 1 and report["killed"] == 1, verdicts
    assert verdicts["biased"] == "killed"
    assert "AttributeError" in verdicts["typo"]
    assert "another claim" in verdicts["wrong-claim"]
    assert "ran to the end" in verdicts["harmless"]


def test_harness_counts_a_kill_only_at_the_first_check_that_says_the_words(tmp_path):
    """Two checks may share words (a claim on the data, then "outside the data too"): the first
    check cell after the edit whose assert messages hold `expect` as written text is the intended
    one, and a later one cannot take the kill; in that cell, any assert whose text holds the words
    counts (by the line that raised, within a multi-line assert, in a loop, or in a function
    defined there and called from a later cell), and one whose message only comes to hold them at
    run time does not. Words all formatted at run time name no check; any check may stop them."""
    path = write_notebook(
        tmp_path / "t.ipynb", SETUP, "a = 1\nb = 1\nname = 'c'\nc = 3",
        "assert a == 1, 'a must be one'",
        "assert b == 1, 'and again, a must be one'",
        "assert c == 3, f'{name} must be three'",
        "e, word, v = 1, 'e', 1",
        "assert e >= 1, 'e must be small'\nassert e != 2, f'{word} must be small'\n"
        "for _ in range(2):\n    assert (\n        e < 3\n    ), 'or else, e must be small'",
        "def check_small(value):\n    assert value < 10, 'v must stay below ten'",
        "check_small(v)\nassert v > 0, 'v must be positive'",
        markdown=[(0, "## Setup"), (1, "## 1. Ones")])
    toml = (mutant("first", "a = 1", "a = 2", "a must be one")
            + mutant("later", "b = 1", "b = 2", "a must be one")
            + mutant("formatted", "c = 3", "c = 4", "c must be three")
            + mutant("sibling", "e, word, v = 1, 'e', 1", "e, word, v = 2, 'e', 1", "e must be small")
            + mutant("in-a-loop", "e, word, v = 1, 'e', 1", "e, word, v = 4, 'e', 1", "e must be small")
            + mutant("in-a-helper", "e, word, v = 1, 'e', 1", "e, word, v = 1, 'e', 20", "below ten"))
    _, report = mutant_report(tmp_path, path, toml)
    verdicts = {m["name"]: m["verdict"] for m in report["mutants"]}
    killed = {name for name, verdict in verdicts.items() if verdict == "killed"}
    assert killed == {"first", "formatted", "in-a-loop", "in-a-helper"}, verdicts
    assert "not by an assert expected" in verdicts["later"] and "in cell 2" in verdicts["later"], verdicts
    assert "line 2, not by an assert expected" in verdicts["sibling"], verdicts
    cells = claims.read_cells(path)
    assert cells[3].asserts == ((1, 1, ("and again, a must be one",)),)
    assert cells[6].asserts[2][:2] == (4, 6)
    assert claims.intended_check(cells, 1, "c must") is None  # its words are formatted at run time
    assert claims.intended_check(cells, 5, "must be") == (6, ((1, 1), (2, 2), (4, 6)))  # not cell 2: before
    assert claims.assert_texts("assert x, 'p' + f'q {y:.2f} r' + 's'") == ((1, 1, ("pq ", " rs")),)


def test_harness_requires_a_killed_mutant_in_every_checked_section(tmp_path, toy):
    code, report = mutant_report(tmp_path, toy, mutant("biased", "mean = x.mean()", "mean = 1.0", "near"))
    assert report["killed"] == report["total"] == 1
    assert report["missing_sections"] == ["§2"] and code == 1
    toml = mutant("biased", "mean = x.mean()", "mean = 1.0", "near") + mutant("sum", "2 + 2", "2 + 3", "four")
    code, report = mutant_report(tmp_path, toy, toml)
    assert code == 0 and report["missing_sections"] == [], report


def test_harness_does_not_count_a_timeout_or_the_edited_cell(tmp_path):
    path = write_notebook(tmp_path / "t.ipynb", SETUP, "y = 1\nnp.testing.assert_equal(y, 1, 'y is one')",
                          "import time\nz = 1", "assert z == 1, 'z is one'")
    toml = (mutant("self", "y = 1", "y = 2", "y is one")
            + mutant("slow", "z = 1", "time.sleep(30)\nz = 2", "z is one"))
    _, report = mutant_report(tmp_path, path, toml, "--timeout", "3")
    verdicts = {m["name"]: m["verdict"] for m in report["mutants"]}
    assert "edited cell itself" in verdicts["self"]
    assert "timed out" in verdicts["slow"]


def processes_mentioning(text):
    """Process ids whose command line holds `text` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:  # it ended while we looked
            continue
    return found


def test_a_run_stuck_where_its_time_limit_cannot_reach_is_killed(tmp_path):
    """A cell that blocks the harness's alarm (as code stuck in a C library would ignore it) fails
    the test at its limit (here 3 s after the cell starts), and every process the run forked goes
    with it."""
    stuck = tmp_path / "stuck"
    blocks = ("import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
              f"open({str(stuck)!r}, 'w').close()\ntime.sleep(120)")
    path = write_notebook(tmp_path / "t.ipynb", SETUP, blocks, "assert True, 'never reached'")
    (tmp_path / "m.toml").write_text(mutant("one", "time.sleep(120)", "time.sleep(121)", "never"))
    with pytest.raises(pytest.fail.Exception, match="was killed"):
        run("mutants", path, "--mutants", tmp_path / "m.toml", "--timeout", "1", limit=3, counted_from=stuck)
    assert stuck.exists(), "the run was killed before it reached the cell that blocks its alarm"
    for _ in range(50):  # SIGKILLed processes may take a moment to leave /proc
        if not processes_mentioning(str(path)):
            break
        time.sleep(0.1)
    assert not processes_mentioning(str(path)), "processes of the killed run are still running"


def test_harness_rejects_bad_mutant_files_in_one_line(tmp_path, toy):
    cases = {
        "occurs nowhere": mutant("absent", "no such text", "x", "near"),
        "occurs 2 times": mutant("twice", "x", "y", "near"),
        "edits a check cell": mutant("check", "< 0.1", "< 1e9", "near"),
        "lacks expect": "[[mutant]]\nname = 'a'\nmistake = 'b'\nfind = 'total'\nreplace = 'x'\n",
        "not valid TOML": "[[mutant]\n",
    }
    for message, text in cases.items():
        (tmp_path / "bad.toml").write_text(text)
        result = run("mutants", toy, "--mutants", tmp_path / "bad.toml")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_harness_reports_a_claim_that_fails_at_another_seed(tmp_path):
    path = write_notebook(tmp_path / "fragile.ipynb", SETUP,
                          "draw = rng.standard_normal()",
                          "assert draw > 0, 'one draw is positive'",
                          markdown=[(1, "## 1. One draw")])
    result = run("seeds", path, "--seeds", *range(1, 9))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "pass" in result.stdout
    assert "§1 cell 2: AssertionError: one draw is positive" in result.stdout


def test_mutants_run_at_the_seed_asked_for(tmp_path):
    path = write_notebook(tmp_path / "s.ipynb", SETUP, "seen = SEED",
                          "assert seen == 7, 'the harness set the seed'",
                          "x = 1", "assert x == 1, 'x is one'")
    toml = (mutant("x", "x = 1", "x = 2", "x is one")
            + mutant("setup", "rng = np.random.default_rng(SEED)", "rng = None", "the harness set the seed")
            + mutant("fork", "seen = SEED", "seen = SEED * 1", "the harness set the seed"))
    code, report = mutant_report(tmp_path, path, toml, "--seed", 7)
    verdicts = {m["name"]: m["verdict"] for m in report["mutants"]}
    assert report["baseline"]["status"] == "passed" and verdicts["x"] == "killed", report
    # The edited setup cell, and a run forked after it, both kept seed 7.
    assert "ran to the end" in verdicts["setup"] and "ran to the end" in verdicts["fork"], verdicts
    _, report = mutant_report(tmp_path, path, toml)  # the book's own seed, 0, by default
    assert report["baseline"]["status"] == "failed" and report["baseline"]["cell"] == 2, report
    (tmp_path / "seedless.toml").write_text(mutant("seedless", "SEED = 0", "SEED = 3", "x is one"))
    result = run("mutants", path, "--mutants", tmp_path / "seedless.toml", "--seed", 7)
    assert result.returncode == 2, result.stderr
    assert "must keep the setup cell's `SEED = 0` line" in result.stderr, result.stderr


def test_mutants_count_for_nothing_where_the_unmutated_notebook_fails(tmp_path):
    path = write_notebook(tmp_path / "f.ipynb", SETUP, "c = 1", "assert c == 1, 'c is one'", "a = 1",
                          "assert SEED == 0, 'the book seed'\nassert a == 1, 'a is one'",
                          "b = a", "assert b == 1 and type(b) is int, 'b is one'")
    toml = (mutant("early", "c = 1", "c = 2", "c is one")  # stopped before the failing cell: counts
            + mutant("same-claim", "a = 1", "a = 2", "the book seed")
            + mutant("same-cell", "a = 1", "a = 3", "a is one")
            + mutant("escapes", "a = 1", "a = 1.0\nSEED = 0", "b is one")  # gets past cell 4
            + mutant("after", "b = a", "b = a + 1", "b is one"))
    code, report = mutant_report(tmp_path, path, toml, "--seed", 1)
    verdicts = {m["name"]: m["verdict"] for m in report["mutants"]}
    assert code == 1 and report["baseline"]["cell"] == 4 and report["killed"] == 1, report
    assert verdicts["early"] == "killed", verdicts
    for name in ("same-claim", "same-cell", "escapes"):
        assert verdicts[name].startswith("not counted: it reached cell 4, where the unmutated"), verdicts
    assert verdicts["after"].startswith("not run: the unmutated notebook fails before it"), verdicts


def test_time_spent_waiting_for_mutants_is_not_the_chapters(tmp_path):
    path = write_notebook(tmp_path / "w.ipynb", SETUP, "import time\nz = 1", "assert z == 1, 'z is one'")
    toml = "".join(mutant(f"slow{k}", "z = 1", f"time.sleep(2)\nz = {k + 2}", "z is one")
                   for k in range(3))  # the first starts at once: two waits, 4 s against 3 s
    _, report = mutant_report(tmp_path, path, toml, "--timeout", 3, "--jobs", 1)
    assert report["baseline"]["status"] == "passed" and report["killed"] == 3, report


def test_seed_is_rewritten_in_the_setup_cell_only(tmp_path):
    path = write_notebook(tmp_path / "s.ipynb", SETUP, "assert SEED == 7, 'the harness set the seed'")
    assert run("seeds", path, "--seeds", 7).returncode == 0
    bad = write_notebook(tmp_path / "noseed.ipynb", "import numpy as np", "x = 1")
    result = run("seeds", bad)
    assert result.returncode == 2 and "SEED = 0" in result.stderr


# ---------------------------------------------------------------------------------------------
# The book


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_mutant_file_declares_enough_wrong_worlds(path):
    cells = claims.read_cells(path)
    mutants = claims.read_mutants(claims.mutant_file(path), cells)  # raises on a malformed file
    assert len(mutants) >= MIN_MUTANTS, f"{path.stem}: {len(mutants)} mutants, at least {MIN_MUTANTS}"


def test_the_claims_ledger_places_every_mutant_under_a_claim():
    """The ledger (book_html.ledger_entries) names each mutant under the claim that stops it: the
    asserts the harness counts, or, for words partly computed at run time, a claim whose message
    can hold them."""
    import book_html

    for path in NOTEBOOKS:
        placed = {name for _, _, names in book_html.ledger_entries(path, claims.mutant_file(path))
                  for name in names}
        declared = {m.name for m in claims.read_mutants(claims.mutant_file(path), claims.read_cells(path))}
        assert declared <= placed, f"{path.stem}: mutants placed nowhere: {sorted(declared - placed)}"
    assert book_html._could_hold("ridge, λ = … should split: …", "ridge, λ = 442 should split")
    assert not book_html._could_hold("a … b …", "the whole of it computed")
    assert book_html._could_hold("… c d", "ab c d") and not book_html._could_hold("… d", "abc d")  # half


def test_every_mutant_file_belongs_to_a_notebook():
    stems = {p.stem for p in NOTEBOOKS}
    strays = [p.name for p in claims.MUTANT_DIR.glob("*") if p.stem not in stems or p.suffix != ".toml"]
    assert not strays, f"files in tests/mutants/ that name no notebook: {strays}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_hold_at_another_seed_and_stop_every_wrong_world(path):
    """One run at the other seed serves both checks (nbval runs the notebook at its own seed): the
    unmutated notebook must pass, and every mutant, forked from it, must be stopped by its claim."""
    result = run("mutants", path, "--seed", OTHER_SEED, "--jobs", 1, "--timeout", RUN_TIMEOUT_S)
    print(result.stdout)  # the mutation score, shown with -rA and in the CI log on failure
    assert "the unmutated notebook fails" not in result.stdout, (
        f"{path.stem}: a claim fails at seed {OTHER_SEED}\n{result.stdout}{result.stderr}")
    assert result.returncode == 0, result.stdout + result.stderr
