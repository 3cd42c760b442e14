"""Checks that can fail: a chapter's claims must survive other seeds and die in a wrong world.

Usage:
  python tools/claims.py seeds   [NOTEBOOK ...] [--seeds S ...] [--jobs N] [--json]
  python tools/claims.py mutants [NOTEBOOK ...] [--mutants FILE] [--seed S] [--jobs N] [--json]

`seeds` runs each notebook with its setup cell's `SEED = 0` rewritten to each seed and prints a
table notebook x seed: pass, or the failing cell and its message.

`mutants` runs each wrong world declared in tests/mutants/<notebook stem>.toml: a small source
edit that implements a plausible mistake. A mutant is killed only by an AssertionError raised by
one of the chapter's check cells (a code cell with an `assert` statement) other than the edited
cell, whose message contains the mutant's `expect` text, and, where some assert message after the
edit holds that text literally, only by such an assert of the first check cell that has one
(intended_check); any other exception, a timeout, or a run to the end leaves it alive. The cells
before the edited one are the same as the original's, so they run once and each mutant is forked
from that point and stops at its first error. With `--seed S` the chapter and its mutants run at
seed S, so that the unmutated run is also that seed's check (`make test` does this at seed 1).
Where the unmutated run fails, at cell b, a mutant stopped before cell b is judged as usual, and
every other one counts for nothing (NOT USED). A mutant of the setup cell must keep its `SEED = 0`
line. The time limit is per run; the unmutated run's excludes the time it waits for a free job to
start a mutant.

Cells run as plain Python, as a kernel would run them in order: Agg backend, figures closed after
each cell, `display` available and myst-nb's `glue` a no-op. Exit status: 0 all held, 1 a claim
failed or a mutant survived, 2 bad input.
"""

import argparse
import ast
import json
import os
import re
import signal
import sys
import tempfile
import time
import tomllib
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

from book_toc import toc_notebooks

ROOT = Path(__file__).resolve().parent.parent
MUTANT_DIR = ROOT / "tests" / "mutants"
ROBUST_SEEDS = (1, 2, 3, 4, 5)   # the seeds `make robust` uses: the first five after the book's own
SEED_LINE = re.compile(r"^SEED = 0$", re.MULTILINE)
NUMBERED = re.compile(r"^## (\d+)\.", re.MULTILINE)
TIMEOUT_S = 600


class UsageError(Exception):
    """Bad input: reported in one line, exit status 2."""


class CellTimeout(BaseException):
    """Raised in a run that exceeded its time; a BaseException, so that `except Exception` in
    notebook code does not catch it."""


@dataclass
class Cell:
    index: int         # position among the notebook's code cells, from 0
    cell_id: str
    source: str
    section: str       # "§3" for "## 3. ...", else the heading text ("Setup", "Exercises")
    asserts: tuple = ()  # (first line, last line, written pieces of its message) per assert

    @property
    def is_check(self):
        """Whether the cell holds an assert statement."""
        return bool(self.asserts)


def asserts_in(source):
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return sorted((node for node in ast.walk(tree) if isinstance(node, ast.Assert)), key=lambda n: n.lineno)


def assert_texts(source):
    """(first line, last line, written pieces) of each assert of a cell, in line order, the pieces
    being what its message says in the source: a string literal (adjacent literals joined, escapes
    applied), an f-string's text between its formatted values, the pieces of a `+` (adjacent
    written ones joined). Text made at run time (a formatted value, a name) is a gap that keeps
    the pieces on either side apart, so `expect` cannot match across it; a message built with
    `%` or `.format` has no written pieces at all (the book has none)."""
    def pieces(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.JoinedStr):
            return [p.value if isinstance(p, ast.Constant) else None for p in node.values]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return pieces(node.left) + pieces(node.right)
        return [None]

    found = []
    for check in asserts_in(source):
        texts, current = [], ""
        for piece in pieces(check.msg) if check.msg is not None else []:
            if piece is None:
                texts.append(current)
                current = ""
            else:
                current += piece
        texts.append(current)
        found.append((check.lineno, check.end_lineno, tuple(t for t in texts if t)))
    return tuple(found)


def read_cells(path):
    """The code cells of a notebook, each with the section it sits in."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        raw_cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path}: not a readable notebook ({error})") from None
    cells, section = [], "before any section"
    for raw in raw_cells:
        source = raw["source"] if isinstance(raw["source"], str) else "".join(raw["source"])
        if raw["cell_type"] == "markdown":
            for line in source.splitlines():
                if line.startswith("## "):
                    numbered = NUMBERED.match(line)
                    section = f"§{numbered.group(1)}" if numbered else line[3:].strip()
        elif raw["cell_type"] == "code":
            cells.append(Cell(len(cells), raw.get("id", ""), source, section, assert_texts(source)))
    return cells


def seeded(setup, seed):
    """The setup cell's source with its `SEED = 0` replaced by `SEED = seed`."""
    if len(SEED_LINE.findall(setup)) != 1:
        raise UsageError("the first code cell must hold the line `SEED = 0` exactly once")
    return SEED_LINE.sub(f"SEED = {int(seed)}", setup)


def with_seed(cells, seed):
    """The sources, with the setup cell's seed set to `seed`."""
    sources = [c.source for c in cells]
    if not cells:
        raise UsageError("the first code cell must hold the line `SEED = 0` exactly once")
    sources[0] = seeded(sources[0], seed)
    return sources


# ---------------------------------------------------------------------------------------------
# Mutant files


@dataclass
class Mutant:
    name: str
    mistake: str
    expect: str
    cell: int          # index of the edited code cell
    source: str        # that cell's edited source
    check: tuple | None = None  # (cell, line spans) of the asserts that may stop it (intended_check)


def _strip(text):
    return text.strip("\n")


def apply_edit(sources, find, replace, what):
    """(index, edited source) for an edit whose `find` text occurs exactly once in `sources`."""
    hits = [(i, s.count(find)) for i, s in enumerate(sources) if find in s]
    total = sum(count for _, count in hits)
    if total != 1:
        where = "nowhere" if total == 0 else f"{total} times"
        raise UsageError(f"{what}: its `find` text occurs {where} (it must occur exactly once)")
    index = hits[0][0]
    return index, sources[index].replace(find, replace, 1)


def read_toml(path):
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError:
        raise UsageError(f"{path}: no such mutant file") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None


def entries(data, table, keys, path, optional=()):
    """The [[table]] items, each with every key of `keys` (text) and no key outside `keys` + `optional`."""
    items = data.get(table, [])
    if not isinstance(items, list):
        raise UsageError(f"{path}: `{table}` must be an array of tables ([[{table}]])")
    for number, item in enumerate(items, 1):
        missing = [k for k in keys if not isinstance(item.get(k), str) or not item[k].strip()]
        if missing:
            raise UsageError(f"{path}: [[{table}]] number {number} lacks {', '.join(missing)}")
        unknown = set(item) - set(keys) - set(optional)
        if unknown:
            raise UsageError(f"{path}: [[{table}]] number {number} has unknown keys {sorted(unknown)}")
    return items


def mutant_file(notebook):
    return MUTANT_DIR / f"{Path(notebook).stem}.toml"


def read_mutants(path, cells):
    """The mutants a file declares, each checked against the notebook's cells."""
    data = read_toml(path)
    items = entries(data, "mutant", ("name", "mistake", "find", "replace", "expect"), path)
    read_wrong_answers(path)
    sources = [c.source for c in cells]
    mutants, names = [], set()
    for item in items:
        name = item["name"]
        if name in names:
            raise UsageError(f"{path}: two mutants are named {name!r}")
        names.add(name)
        index, edited = apply_edit(sources, _strip(item["find"]), _strip(item["replace"]),
                                   f"{path.name}: mutant {name!r}")
        if cells[index].is_check:
            raise UsageError(f"{path.name}: mutant {name!r} edits a check cell; mutants change the "
                             "computation, never the checks")
        if index == 0 and len(SEED_LINE.findall(edited)) != 1:  # it must run at the harness's seed
            raise UsageError(f"{path.name}: mutant {name!r} must keep the setup cell's `SEED = 0` line")
        if edited == sources[index]:
            raise UsageError(f"{path.name}: mutant {name!r} changes nothing")
        mutants.append(Mutant(name, item["mistake"], item["expect"], index, edited,
                              intended_check(cells, index, item["expect"])))
    return mutants


def intended_check(cells, edited, expect):
    """(cell, ((first line, last line), ...)) of the asserts that may stop a mutant of cell
    `edited`: those whose message's literal text (assert_texts) holds `expect`, in the first check
    cell after the edit that has one. None where no literal text does (the matching words are
    formatted at run time); such a mutant is stopped by any check whose message holds `expect`.
    Several checks may say the same words (chapter 1's variance claim on the data, then outside
    it): the first cell is the one named, so a later check cannot take the kill; nor can a check
    whose message only comes to hold the words at run time, when a literal one exists. Within the
    cell, each assert that says the words counts (chapter 3 states the hard threshold at one
    lambda, then at every lambda: a seed may pass the first and fail the second)."""
    for cell in cells[edited + 1:]:
        spans = tuple((first, last) for first, last, texts in cell.asserts
                      if any(expect in text for text in texts))
        if spans:
            return cell.index, spans
    return None


def read_wrong_answers(path):
    """The [[wrong_answer]] entries of a mutant file (applied by the coursework tests). `score`, when
    given, is the exact score the answer must get (a near-correct answer earns some parts); else 0."""
    data = read_toml(path)
    items = entries(data, "wrong_answer", ("question", "mistake", "find", "replace"), path, ("score",))
    for number, item in enumerate(items, 1):
        score = item.get("score", 0)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score < 0:
            raise UsageError(f"{path}: [[wrong_answer]] number {number}: `score` must be a number >= 0")
    return [dict(item, find=_strip(item["find"]), replace=_strip(item["replace"]),
                 score=float(item.get("score", 0))) for item in items]


# ---------------------------------------------------------------------------------------------
# Running cells


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(environ):
    """Pin BLAS to one thread in `environ` (unless set already): runs that share the cores with
    other runs would otherwise oversubscribe them. Set before NumPy loads."""
    for variable in BLAS_THREAD_VARIABLES:
        environ.setdefault(variable, "1")
    return environ


def prepare_process(notebook_dir):
    """Once, before any cell: the environment a learner's kernel gives the notebook."""
    os.environ["MPLBACKEND"] = "Agg"
    one_blas_thread(os.environ)  # runs share the cores
    stub = types.ModuleType("myst_nb")
    stub.glue = lambda name, value, display=True: None
    sys.modules["myst_nb"] = stub
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.show = lambda *args, **kwargs: None
    # The libraries every chapter imports, loaded once so that each forked run starts warm.
    import numpy  # noqa: F401
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    os.chdir(notebook_dir)


def fresh_namespace():
    from IPython.display import display
    return {"__name__": "__main__", "__builtins__": __builtins__, "display": display}


def run_cells(sources, start, namespace, label):
    """Execute sources[start:] in order; the first exception ends the run. Returns an outcome dict."""
    import matplotlib.pyplot as plt

    for index in range(start, len(sources)):
        try:
            exec(compile(sources[index], cell_filename(label, index), "exec"), namespace)
        except CellTimeout:
            return {"status": "timeout", "cell": index, "error": "CellTimeout", "message": ""}
        except BaseException as error:  # noqa: BLE001 - a cell's failure is the result we report
            return {"status": "failed", "cell": index, "error": type(error).__name__,
                    "raised_at": raised_at(error, label),
                    "message": str(error)[:2000],
                    "traceback": "".join(traceback.format_exception(error, limit=-3))[-3000:]}
        finally:
            plt.close("all")
    return {"status": "passed", "cell": None, "error": None, "message": ""}


def cell_filename(label, index):
    return f"<{label} cell {index}>"


def raised_at(error, label):
    """[cell, line] of the notebook's own code nearest to where `error` was raised: the cell and
    line of the assert itself, also when a function defined in another cell holds it."""
    prefix = cell_filename(label, "")[:-1]
    found, tb = None, error.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith(prefix) and name.endswith(">"):
            found = [int(name[len(prefix):-1]), tb.tb_lineno]
        tb = tb.tb_next
    return found


def _on_alarm(signum, frame):
    raise CellTimeout()


def silence():
    """Send this process's stdout and stderr to /dev/null: the notebook's prints are not our output."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def fork():
    sys.stdout.flush()
    sys.stderr.flush()
    return os.fork()


def fork_run(sources, start, namespace, label, result_path, timeout):
    """Fork a child that runs sources[start:] and writes its outcome to result_path; return its pid."""
    pid = fork()
    if pid:
        return pid
    status = 1
    try:
        silence()
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(int(timeout))
        started = time.perf_counter()
        outcome = run_cells(sources, start, namespace, label)
        signal.alarm(0)
        outcome["seconds"] = round(time.perf_counter() - started, 2)
        Path(result_path).write_text(json.dumps(outcome))
        status = 0
    finally:
        os._exit(status)


class Children:
    """Forked runs, at most `jobs` at once, each killed a grace period after its own timeout."""

    def __init__(self, jobs, timeout):
        self.jobs, self.timeout, self.running = jobs, timeout, {}

    def start(self, *args, **kwargs):
        while len(self.running) >= self.jobs:
            self.reap_one()
        pid = fork_run(*args, timeout=self.timeout, **kwargs)
        self.running[pid] = time.monotonic() + self.timeout + 30

    def reap_one(self):
        while True:
            for pid, deadline in list(self.running.items()):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    del self.running[pid]
                    return
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def wait_all(self):
        while self.running:
            self.reap_one()


def read_result(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"status": "timeout", "cell": None, "error": "killed",
                "message": "the run was killed after its time limit or died without a result"}


# ---------------------------------------------------------------------------------------------
# Seeds


def run_seeds(notebooks, seeds, jobs, timeout=TIMEOUT_S):
    """{(notebook name, seed): outcome} for every notebook at every seed."""
    plans = [(nb, read_cells(nb)) for nb in notebooks]
    for nb, cells in plans:
        try:
            with_seed(cells, 1)  # fail early, in one line, on a notebook without the setup seed
        except UsageError as error:
            raise UsageError(f"{Path(nb).name}: {error}") from None
    results = {}
    with tempfile.TemporaryDirectory(prefix="claims-") as scratch:
        prepare_process(Path(notebooks[0]).resolve().parent)
        children = Children(jobs, timeout)
        for nb, cells in plans:
            for seed in seeds:
                out = Path(scratch) / f"{Path(nb).stem}-{seed}.json"
                os.chdir(Path(nb).resolve().parent)
                children.start(with_seed(cells, seed), 0, fresh_namespace(), Path(nb).stem, out)
                results[(Path(nb).stem, seed)] = out
        children.wait_all()
        for nb, cells in plans:
            for seed in seeds:
                outcome = read_result(results[(Path(nb).stem, seed)])
                if outcome.get("cell") is not None:
                    outcome["section"] = cells[outcome["cell"]].section
                results[(Path(nb).stem, seed)] = outcome
    return results


def describe(outcome):
    if outcome["status"] == "passed":
        return "pass"
    where = f"{outcome.get('section', '?')} cell {outcome['cell']}" if outcome["cell"] is not None else ""
    first_line = (outcome["message"].splitlines() or [""])[0]
    return f"{where}: {outcome['error']}: {first_line}".strip(": ")


def seeds_table(results, seeds):
    names = sorted({name for name, _ in results})
    width = max(len(n) for n in names) + 2
    lines = ["notebook".ljust(width) + "".join(f"seed {s}".ljust(10) for s in seeds)]
    failures = []
    for name in names:
        row = name.ljust(width)
        for seed in seeds:
            outcome = results[(name, seed)]
            row += ("pass" if outcome["status"] == "passed" else "FAIL").ljust(10)
            if outcome["status"] != "passed":
                failures.append(f"  {name} at seed {seed}: {describe(outcome)}")
        lines.append(row)
    if failures:
        lines += ["", "failures:", *failures]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Mutants


def run_mutants(notebook, mutants, jobs, timeout=TIMEOUT_S, seed=0):
    """The unmutated run's outcome and each mutant's, forked from the shared prefix of cells, with
    the setup cell's seed set to `seed`."""
    cells = read_cells(notebook)
    try:
        sources = with_seed(cells, seed)
    except UsageError as error:
        raise UsageError(f"{Path(notebook).name}: {error}") from None
    # A mutant of the setup cell runs at the same seed (read_mutants made sure it can).
    mutated = {m.name: seeded(m.source, seed) if m.cell == 0 else m.source for m in mutants}
    label = Path(notebook).stem
    with tempfile.TemporaryDirectory(prefix="claims-") as scratch:
        result_of = {m.name: Path(scratch) / f"mutant-{i}.json" for i, m in enumerate(mutants)}
        runner = fork()
        if runner == 0:  # the chapter runner: runs the original cells, forking each mutant on the way
            status = 1
            try:
                silence()
                prepare_process(Path(notebook).resolve().parent)
                children = Children(jobs, timeout)
                namespace = fresh_namespace()
                signal.signal(signal.SIGALRM, _on_alarm)
                signal.setitimer(signal.ITIMER_REAL, timeout)
                baseline = {"status": "passed", "cell": None, "error": None, "message": ""}
                index = 0
                try:
                    for index in range(len(sources)):
                        for m in (m for m in mutants if m.cell == index):
                            edited = sources[:index] + [mutated[m.name]] + sources[index + 1:]
                            # waiting for a free job is not the chapter's time
                            left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
                            if left == 0:  # it ran out just now
                                raise CellTimeout()
                            children.start(edited, index, namespace, label, result_of[m.name])
                            signal.setitimer(signal.ITIMER_REAL, left)
                        outcome = run_cells(sources[:index + 1], index, namespace, label)
                        if outcome["status"] != "passed":
                            baseline = outcome  # later mutants would start from a broken state
                            break
                except CellTimeout:  # the time ran out between cells
                    baseline = {"status": "timeout", "cell": index, "error": "CellTimeout",
                                "message": f"the time ran out at cell {index}"}
                except Exception as error:  # noqa: BLE001 - the harness's own failure, reported
                    baseline = {"status": "failed", "cell": index, "error": type(error).__name__,
                                "message": f"the harness failed at cell {index}: {error}"[:2000]}
                finally:
                    signal.signal(signal.SIGALRM, signal.SIG_IGN)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                Path(scratch, "baseline.json").write_text(json.dumps(baseline))
                children.wait_all()
                status = 0
            finally:
                os._exit(status)
        os.waitpid(runner, 0)
        baseline = read_result(Path(scratch) / "baseline.json")
        if baseline.get("cell") is not None:
            baseline["section"] = cells[baseline["cell"]].section
        results = [classify(m, read_result(result_of[m.name]), cells, baseline) for m in mutants]
    return baseline, results


def unused(mutant, outcome, baseline):
    """Why a mutant counts for nothing, or None: where the unmutated notebook (`baseline`) fails,
    at cell b, only a mutant stopped before cell b is judged."""
    if baseline is None or baseline["status"] == "passed":
        return None
    fails_at, cell = baseline.get("cell"), outcome.get("cell")
    if fails_at is None:
        return "not counted: the unmutated notebook did not run to the end"
    if mutant.cell > fails_at:
        return f"not run: the unmutated notebook fails before it, at cell {fails_at}"
    if outcome["status"] == "passed" or (cell is not None and cell >= fails_at):
        return f"not counted: it reached cell {fails_at}, where the unmutated notebook fails"
    if cell is None:  # never started, or left no result, while the runner was failing
        return f"not counted: no outcome of its own, and the unmutated notebook fails at cell {fails_at}"
    return None


def stopped_where_intended(check, raised):
    """Whether the assert that raised, at [cell, line], is one that intended_check names."""
    intended_cell, spans = check
    return raised is not None and raised[0] == intended_cell and any(a <= raised[1] <= b for a, b in spans)


def classify(mutant, outcome, cells, baseline=None):
    """A mutant's verdict: killed, survived with the reason, or not used (see `unused`)."""
    result = {"name": mutant.name, "mistake": mutant.mistake, "cell": mutant.cell,
              "mutated_section": cells[mutant.cell].section, "outcome": outcome}
    cell = outcome.get("cell")
    if cell is not None:
        outcome["section"] = cells[cell].section
    not_used = unused(mutant, outcome, baseline)
    if not_used:
        verdict = not_used
    elif outcome["status"] == "passed":
        verdict = "ran to the end: no check noticed"
    elif outcome["status"] == "timeout":
        verdict = "timed out (a timeout does not count as killed)"
    elif outcome["error"] != "AssertionError":
        verdict = f"stopped by {outcome['error']} in cell {cell}, not by a check's AssertionError"
    elif cell == mutant.cell:
        verdict = "the edited cell itself raised the AssertionError"
    elif not cells[cell].is_check:
        verdict = f"cell {cell} raised an AssertionError but holds no assert statement"
    elif mutant.expect not in outcome["message"]:
        verdict = f"killed by another claim than expected ({mutant.expect!r})"
    elif mutant.check is not None and not stopped_where_intended(mutant.check, outcome.get("raised_at")):
        at = outcome.get("raised_at") or [cell, None]
        lines = ", ".join(str(first) for first, _ in mutant.check[1])
        verdict = (f"stopped in cell {at[0]} line {at[1]}, not by an assert expected: "
                   f"those saying {mutant.expect!r} in cell {mutant.check[0]} (line {lines})")
    else:
        verdict = "killed"
    result["verdict"] = verdict
    result["used"] = not not_used
    result["killed"] = verdict == "killed"
    result["killed_in"] = cells[cell].section if verdict == "killed" else None
    return result


def sections_with_checks(cells):
    """The numbered sections that make a checked claim."""
    return sorted({c.section for c in cells if c.is_check and c.section.startswith("§")},
                  key=lambda s: int(s[1:]))


def mutation_report(notebook, baseline, results, cells):
    name = Path(notebook).stem
    killed = sum(r["killed"] for r in results)
    needed = sections_with_checks(cells)
    covered = {r["killed_in"] for r in results if r["killed"]}
    missing = [s for s in needed if s not in covered]
    score = 100 * killed / len(results) if results else 0
    lines = [f"{name}: {killed}/{len(results)} mutants killed ({score:.0f} %); "
             f"sections whose checks killed a mutant: {len(needed) - len(missing)}/{len(needed)}"]
    if baseline["status"] != "passed":
        lines.append(f"  the unmutated notebook fails: {describe(baseline)}")
    for r in results:
        tag = "killed  " if r["killed"] else "SURVIVED" if r["used"] else "NOT USED"
        detail = describe(r["outcome"]) if r["killed"] else r["verdict"]
        lines.append(f"  {tag} {r['name']} ({r['mutated_section']}): {detail}"[:300])
    if missing:
        lines.append(f"  no mutant is killed by a check of: {', '.join(missing)}")
    return "\n".join(lines), {"notebook": name, "baseline": baseline, "mutants": results,
                              "sections_with_checks": needed, "missing_sections": missing,
                              "killed": killed, "total": len(results)}


# ---------------------------------------------------------------------------------------------
# Command line


def notebooks_from(names):
    if not names:
        return toc_notebooks()
    paths = []
    for name in names:
        path = Path(name)
        if not path.exists():
            path = ROOT / "book" / (name if name.endswith(".ipynb") else f"{name}.ipynb")
        if not path.exists() or path.suffix != ".ipynb":
            raise UsageError(f"{name}: no such notebook")
        paths.append(path.resolve())  # the runs change directory: keep no relative path
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeds = sub.add_parser("seeds", help="run notebooks at other seeds")
    seeds.add_argument("notebooks", nargs="*")
    seeds.add_argument("--seeds", nargs="+", type=int, default=list(ROBUST_SEEDS))
    mutants = sub.add_parser("mutants", help="run each notebook's wrong-world mutants")
    mutants.add_argument("notebooks", nargs="*")
    mutants.add_argument("--mutants", help="the mutant file (default: tests/mutants/<stem>.toml)")
    mutants.add_argument("--seed", type=int, default=0, help="the setup cell's seed (default 0)")
    for command in (seeds, mutants):
        command.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
        command.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per run (> 0)")
        command.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    try:
        if args.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        notebooks = notebooks_from(args.notebooks)
        if getattr(args, "mutants", None) and len(notebooks) != 1:
            raise UsageError("--mutants names the file of one notebook: name exactly one notebook")
        if args.command == "seeds":
            results = run_seeds(notebooks, args.seeds, max(1, args.jobs), args.timeout)
            ok = all(r["status"] == "passed" for r in results.values())
            if args.json:
                print(json.dumps([dict(r, notebook=n, seed=s) for (n, s), r in results.items()]))
            else:
                print(seeds_table(results, args.seeds))
            return 0 if ok else 1
        reports, ok = [], True
        for nb in notebooks:
            cells = read_cells(nb)
            declared = read_mutants(Path(args.mutants) if args.mutants else mutant_file(nb), cells)
            baseline, results = run_mutants(nb, declared, max(1, args.jobs), args.timeout, args.seed)
            text, data = mutation_report(nb, baseline, results, cells)
            ok &= (baseline["status"] == "passed" and data["killed"] == data["total"]
                   and not data["missing_sections"])
            reports.append(data)
            if not args.json:
                print(text, flush=True)
        if args.json:
            print(json.dumps(reports))
        return 0 if ok else 1
    except UsageError as error:
        print(f"claims.py: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
