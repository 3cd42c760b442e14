"""Tests a student cannot disarm: student code and the checks never share a process.

The student's kernel (sandboxed) runs the notebook as usual, but around each graded test cell a
recorder replaces the answer's functions by wrappers that write down what they return, as plain
values (numbers, arrays, strings, and tuples, lists and dicts of them) in a JSON-lines file. The
judge then runs the instructor's test cells in a separate, clean Python process, after the
setup cell only, with each answer function replaced by a replayer of the recorded values. Whatever
the student's code did to NumPy, scikit-learn, builtins or the test cells in its own kernel, the
asserts that decide the grade run on an untouched NumPy and see only numbers; a forged record can
pass only by holding the right numbers, which is answering the question.

Questions whose answer cell carries the tag `numpy-only` also get a static check of the student's
answer: it may use NumPy, `math`, builtins other than the introspection ones, and its own names.

    python judge.py < job.json     (job: a list of chapters to judge; see judge_chapters)
"""

import ast
import builtins
import json
import os
import re
import sys

NUMPY_ONLY = "numpy-only"
MAX_RECORD_BYTES = 64 * 2**20
MAX_ELEMENTS = 10**6
# Reach past the answer's own names to other libraries or to the grader: not allowed in NumPy-only answers.
INTROSPECTION = {"eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "globals",
                 "locals", "vars", "open", "breakpoint", "input", "memoryview", "type", "object",
                 "super", "help", "exit", "quit"}
ALLOWED_MODULES = {"numpy", "math"}

# Runs in the student's kernel, as the first cell of the notebook being graded. It is untrusted
# once student code has run: everything it writes is read back as plain JSON values only.
RECORDER = r'''
class _GradingRecorder:
    """Set by the grader: writes down what the answer returns during each graded test cell."""

    def __init__(self, namespace, path, max_elements):
        self.namespace, self.path, self.max_elements = namespace, path, max_elements
        self.saved, self.calls, self.values, self.depth, self.grade_id = {}, [], {}, 0, None

    def encode(self, value):
        import numpy
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, numpy.generic) and value.dtype.kind in "biuf":
            value = value.item()
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, numpy.ndarray) and value.dtype.kind in "biuf":
            if value.size > self.max_elements:
                return {"unsupported": "an array with more than %d elements" % self.max_elements}
            return {"ndarray": value.ravel().tolist(), "dtype": value.dtype.kind,
                    "shape": list(value.shape)}
        if isinstance(value, (tuple, list)):
            return {type(value).__name__: [self.encode(v) for v in value]}
        if isinstance(value, dict):
            return {"dict": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        return {"unsupported": type(value).__name__}

    def wrap(self, name, function):
        def recorded(*args, **kwargs):
            if self.depth:  # a call from inside the answer: not one the test made
                return function(*args, **kwargs)
            self.depth += 1
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                self.calls.append({"name": name, "raised": type(exc).__name__,
                                   "message": str(exc)[:300]})
                raise
            finally:
                self.depth -= 1
            self.calls.append({"name": name, "result": self.encode(result)})
            return result
        return recorded

    def begin(self, grade_id, names):
        self.grade_id, self.calls, self.values, self.saved, self.depth = grade_id, [], {}, {}, 0
        for name in names:
            if name not in self.namespace:
                continue
            value = self.namespace[name]
            if callable(value) and not isinstance(value, type):
                self.saved[name] = value
                self.namespace[name] = self.wrap(name, value)
            else:
                self.values[name] = self.encode(value)

    def end(self):
        self.namespace.update(self.saved)
        import json
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"grade_id": self.grade_id, "calls": self.calls,
                                     "values": self.values}) + "\n")
'''


def names_defined(source):
    """Top-level names an answer cell defines (functions, classes, assigned variables)."""
    found = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                found |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return found


def names_read(source):
    tree = ast.parse(source)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def answer_names(nb):
    """The names every answer cell of a notebook defines (the names the tests may read)."""
    names = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            names |= names_defined(cell.source)
    return names


def test_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]


RECORDER_MARK = "grading_recorder"  # cell metadata of the cells instrument() adds


def without_recorder(executed):
    """The executed notebook as the student wrote it, written answers included: the recorder's
    cells and the restored hidden tests taken out (so it can go back to the student)."""
    executed.cells = [c for c in executed.cells if not c.metadata.get(RECORDER_MARK)
                      and "BEGIN HIDDEN TESTS" not in c.source]
    return executed


def instrument(submitted, source, records):
    """The notebook to execute in the student's kernel: the submission with the instructor's test
    cells (restored, re-inserted when deleted) and the recorder around each of them, writing to
    the file `records` (a place the kernel can write)."""
    import nbformat

    answers = answer_names(source)
    restored = {c.metadata["nbgrader"]["grade_id"]: c for c in test_cells(source)}
    cells, seen = [], set()
    for cell in submitted.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        tested = cell.metadata.get("nbgrader", {}).get("grade") or grade_id in restored
        if cell.cell_type == "code" and tested:  # written answers (markdown) are kept as they are
            if grade_id not in restored or grade_id in seen:
                continue  # a test cell the instructor did not write, or a copy of one
            cell = restored[grade_id]
            seen.add(grade_id)
        cells.append(cell)
    # Re-insert deleted test cells after the last cell of their question that is still there.
    for grade_id, cell in restored.items():
        if grade_id in seen:
            continue
        question = question_of(grade_id)
        at = max((i + 1 for i, c in enumerate(cells)
                  if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith(question + "-")),
                 default=len(cells))
        cells.insert(at, cell)
    def recorder_cell(source):
        return nbformat.v4.new_code_cell(source, metadata={RECORDER_MARK: True})

    program = [recorder_cell(
        f"{RECORDER}\n_grading_recorder = _GradingRecorder(globals(), {str(records)!r}, {MAX_ELEMENTS})")]
    for cell in cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            wanted = sorted(names_read(source_of(cell)) & answers)
            begin = f"_grading_recorder.begin({meta['grade_id']!r}, {wanted!r})"
            program += [recorder_cell(begin), cell, recorder_cell("_grading_recorder.end()")]
        else:
            program.append(cell)
    out = nbformat.v4.new_notebook(metadata=submitted.metadata)
    out.cells = program
    for i, cell in enumerate(out.cells):
        cell.id = f"graded-{i}"
    return out


def source_of(cell):
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


# ---------------------------------------------------------------------------------------------
# The judge: a clean process that never runs student code.


def decode(value):
    """A recorded value back as Python and NumPy objects (JSON in, never code)."""
    import numpy as np

    if not isinstance(value, dict):
        return value
    if "ndarray" in value:
        dtype = {"f": float, "i": np.int64, "u": np.uint64, "b": bool}[value["dtype"]]
        return np.array(value["ndarray"], dtype=dtype).reshape(value["shape"])
    (kind, body), = value.items()
    if kind in ("tuple", "list"):
        items = [decode(v) for v in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {decode(k): decode(v) for k, v in body}
    if kind == "unsupported":
        raise TypeError(f"the answer returned {body}; it must return numbers, arrays or strings")
    raise ValueError(f"unreadable record {kind!r}")


class NotRecorded(Exception):
    """The answer gave no value for this call: it failed or the notebook stopped before it."""


def replayers(record):
    """{name: stand-in} that returns, call after call, what the answer returned in its kernel."""
    queues = {}
    for call in record["calls"]:
        queues.setdefault(call["name"], []).append(call)

    def stand_in(name):
        def replay(*args, **kwargs):
            if not queues.get(name):
                raise NotRecorded(f"{name} gave no value for this check")
            call = queues[name].pop(0)
            if "raised" in call:
                kind = getattr(builtins, call["raised"], None)
                if not (isinstance(kind, type) and issubclass(kind, Exception)):
                    kind = RuntimeError
                raise kind(f"{name} raised {call['raised']}: {call['message']}")
            return decode(call["result"])
        return replay

    names = {n: stand_in(n) for n in queues}
    names.update({n: decode(v) for n, v in record["values"].items()})
    return names


def forbidden_in(source):
    """The first construct a NumPy-only answer may not use, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # the answer fails on its own
    own = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            own |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            if not isinstance(node, ast.Lambda):
                own.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            own.add(node.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_MODULES:
                    return f"import {alias.name}"
                own.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] not in ALLOWED_MODULES:
                return f"from {node.module} import ..."
            own |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return f".{node.attr}"
    allowed = own | {"np", "numpy", "math"} | (set(dir(builtins)) - INTROSPECTION)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in allowed:
            return node.id
    return None


def read_records(path):
    records = {}
    if not os.path.exists(path):
        return records
    if os.path.getsize(path) > MAX_RECORD_BYTES:
        raise ValueError("the answers' recorded values are too large")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
                grade_id = record["grade_id"]
                if isinstance(grade_id, str) and isinstance(record["calls"], list) and isinstance(
                        record["values"], dict):
                    records.setdefault(grade_id, record)  # the first run of a test cell counts
            except (ValueError, KeyError, TypeError):
                continue  # a line the student's code wrote: ignored
    return records


def question_of(grade_id):
    return re.sub(r"-(solution|(hidden-)?tests(-[a-z0-9]+)?)$", "", grade_id)


def judge_chapter(source_path, answers, records_path):
    """{grade_id: [passed, message]} for every test cell of the chapter.

    `source_path` is the instructor's notebook, `answers` {question: the student's answer source}
    (parsed, never run), `records_path` what the student's kernel recorded."""
    import nbformat

    nb = nbformat.read(source_path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    numpy_only = {question_of(c.metadata["nbgrader"]["grade_id"]) for c in cells
                  if c.metadata.get("nbgrader", {}).get("solution")
                  and NUMPY_ONLY in c.metadata.get("tags", [])}
    records = read_records(records_path)
    setup = {"__name__": "__main__"}
    exec(compile(source_of(cells[0]), "setup", "exec"), setup)
    verdicts = {}
    for cell in test_cells(nb):
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        question = question_of(grade_id)
        hidden = "-hidden-tests" in grade_id
        if question in numpy_only:
            used = forbidden_in(answers.get(question, ""))
            if used:
                verdicts[grade_id] = [False, f"the answer uses `{used}`; this question allows NumPy only"]
                continue
        if grade_id not in records:
            verdicts[grade_id] = [False, "this check did not run: the notebook stopped before it"]
            continue
        namespace = dict(setup)
        try:
            namespace.update(replayers(records[grade_id]))
            exec(compile(source_of(cell), grade_id, "exec"), namespace)
            verdicts[grade_id] = [True, "passed"]
            continue
        except NotImplementedError:
            verdicts[grade_id] = [False, "not attempted (the answer still raises NotImplementedError)"]
            continue
        except AssertionError as exc:
            message = str(exc) or "a check failed"
        except NotRecorded as exc:
            message = f"{exc}: it failed or the notebook stopped before it"
        except NameError as exc:
            message = f"{exc} when the checks ran: did the answer cell run without error?"
        except Exception as exc:  # noqa: BLE001 - every failure is a verdict, never a crash
            message = f"{type(exc).__name__}: {exc}"[:300]
        verdicts[grade_id] = [False, "a hidden check failed" if hidden else message]
    return verdicts


def judge_chapters(jobs):
    """[{chapter, source, answers, records}] -> {chapter: verdicts}, each chapter in a fresh namespace."""
    return {job["chapter"]: judge_chapter(job["source"], job["answers"], job["records"]) for job in jobs}


def main():
    os.environ.setdefault("MPLBACKEND", "Agg")
    json.dump(judge_chapters(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
