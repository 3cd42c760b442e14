"""Tests a student cannot disarm: whatever an answer does to NumPy, scikit-learn, builtins, the
test cells or the kernel, it scores no more than the honest blank (judge.py)."""

import judge
import nbformat
import pytest
from test_coursework import ROOT, read_rows, run, short_notebook, totals, write_short, write_student_notebooks

# make test runs this file on one pytest-xdist worker (--dist loadgroup): its tests share
# module fixtures that build or grade once.
pytestmark = pytest.mark.xdist_group("cheats")

CHAPTER = "02_ridge"
QUESTION = "ex-ridge-fit"  # NumPy only; returns (w, b)
HEADER = "def ridge_fit(X, y, lam, sample_weight=None):\n"
ZEROS = "    return np.zeros(np.shape(X)[1]), 0.0\n"

# name -> (a cell the student adds after the setup cell, the answer cell of ex-ridge-fit). The added
# cells try to make a zero answer pass; the answers that call scikit-learn break the NumPy-only rule.
CHEATS = {
    "patches_allclose": (
        "np.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n", HEADER + ZEROS),
    "redefines_assertion_error": (
        "import builtins\n"
        "class Quiet(Exception):\n    pass\n"
        "builtins.AssertionError = Quiet\n", HEADER + ZEROS),
    "disables_asserts": (
        "import ast\n"
        "class Strip(ast.NodeTransformer):\n"
        "    def visit_Assert(self, node):\n        return None\n"
        "get_ipython().ast_transformers.append(Strip())\n", HEADER + ZEROS),
    "exits_the_kernel": ("", HEADER + "    import os\n    os._exit(0)\n"),
    "sys_exit_mid_notebook": ("import sys\nsys.exit(0)\n", HEADER + ZEROS),
    "fakes_the_reference": (
        "import sklearn.linear_model\n"
        "class Ridge:\n"
        "    def __init__(self, alpha=1.0, **kwargs):\n        pass\n"
        "    def fit(self, X, y, sample_weight=None):\n"
        "        self.coef_, self.intercept_ = np.zeros(np.shape(X)[1]), 0.0\n"
        "        return self\n"
        "sklearn.linear_model.Ridge = Ridge\n", HEADER + ZEROS),
    "forges_the_records": (
        "import json\n"
        "for part in ('ex-ridge-fit-tests', 'ex-ridge-fit-hidden-tests'):\n"
        "    record = {'grade_id': part, 'calls': [], 'values': {'ridge_fit': 0}}\n"
        "    with open(_grading_recorder.path, 'a') as f:\n"
        "        f.write(json.dumps(record) + '\\n')\n"
        "_grading_recorder.begin = _grading_recorder.end = lambda *a: None\n", HEADER + ZEROS),
    "uses_a_forbidden_library": ("", HEADER + (
        "    from sklearn.linear_model import Ridge as R\n"
        "    m = R(alpha=lam).fit(X, y, sample_weight=sample_weight)\n"
        "    return m.coef_, float(m.intercept_)\n")),
    "hides_a_forbidden_library": ("", HEADER + (
        "    m = __import__('sklearn.linear_model', fromlist=['Ridge']).Ridge(alpha=lam)\n"
        "    m.fit(X, y, sample_weight=sample_weight)\n"
        "    return m.coef_, float(m.intercept_)\n")),
    "calls_the_setup_import": ("", HEADER + (
        "    m = Ridge(alpha=lam).fit(X, y, sample_weight=sample_weight)\n"
        "    return m.coef_, float(m.intercept_)\n")),
    "calls_a_helper_cell": (
        "def helper(X, y, lam, s):\n"
        "    m = Ridge(alpha=lam).fit(X, y, sample_weight=s)\n"
        "    return m.coef_, float(m.intercept_)\n",
        HEADER + "    return helper(X, y, lam, sample_weight)\n"),
}
LIBRARY_CHEATS = ["uses_a_forbidden_library", "hides_a_forbidden_library", "calls_the_setup_import",
                  "calls_a_helper_cell"]


def answer_cell(nb, question):
    wanted = f"{question}-solution"
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == wanted)


@pytest.fixture(scope="module")
def cheats_graded(tmp_path_factory, grade_flags):
    subs = tmp_path_factory.mktemp("cheats")
    book = ROOT / "book" / f"{CHAPTER}.ipynb"
    student = write_student_notebooks(tmp_path_factory, CHAPTER)

    def short_student_notebook():
        # The cheats hand in only the question's own cells (short_notebook); the missing questions
        # score zero for every cheat and for the blank alike.
        return short_notebook(nbformat.read(student / book.name, as_version=4), {QUESTION})

    for name, (added, answer) in [("blank", ("", None)), *CHEATS.items()]:
        (subs / name).mkdir()
        nb = short_student_notebook()
        if answer is not None:
            answer_cell(nb, QUESTION).source = answer
        setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(added))
        nbformat.write(nb, subs / name / book.name)
    # Deleting and editing the test cells, on top of a zero answer.
    for name, change in [("deletes_tests", "delete"), ("edits_tests", "edit")]:
        (subs / name).mkdir()
        nb = short_student_notebook()
        answer_cell(nb, QUESTION).source = HEADER + ZEROS
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        if change == "delete":
            nb.cells = [c for c in nb.cells if c not in tests]
        for cell in tests:
            cell.source = "assert True"
        nbformat.write(nb, subs / name / book.name)
    write_short(book, subs / "honest" / book.name)  # every question, the reference answers
    # Control: the short notebook with the right answer scores the question's full marks, so a
    # cheat's zero comes from the judge, not from the missing cells.
    (subs / "short_honest").mkdir()
    nb = short_student_notebook()
    answer_cell(nb, QUESTION).source = answer_cell(nbformat.read(book, as_version=4), QUESTION).source
    nbformat.write(nb, subs / "short_honest" / book.name)
    out = tmp_path_factory.mktemp("run") / "grades"
    result = run("grade", subs, "--chapters", CHAPTER, "--timeout", "30", "--output", out, *grade_flags)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return read_rows(out / "grades.csv")


def score_of(rows, student, question=QUESTION):
    return sum(float(r["score"]) for r in rows if r["student"] == student and r["question"] == question)


def test_the_honest_answer_scores_full_marks(cheats_graded):
    score, most = totals(cheats_graded, "honest", CHAPTER)
    assert score == most > 0
    row = next(r for r in cheats_graded if r["student"] == "short_honest" and r["question"] == QUESTION)
    assert float(row["score"]) == float(row["max_score"]) > 0, row


@pytest.mark.parametrize("cheat", [*CHEATS, "deletes_tests", "edits_tests"])
def test_no_cheat_scores_more_than_the_blank(cheats_graded, cheat):
    blank = totals(cheats_graded, "blank", CHAPTER)[0]
    assert score_of(cheats_graded, cheat) <= score_of(cheats_graded, "blank") == 0
    assert totals(cheats_graded, cheat, CHAPTER)[0] <= blank, cheat


def test_only_the_library_cheats_are_stopped_by_the_numpy_only_rule(cheats_graded):
    """The other cheats must be stopped by the judge, not by the static check of the answer."""
    for cheat in CHEATS:
        row = next(r for r in cheats_graded if r["student"] == cheat and r["question"] == QUESTION)
        assert ("NumPy only" in row["feedback"]) == (cheat in LIBRARY_CHEATS), row


def test_the_recorder_round_trips_plain_values(tmp_path):
    """What an answer returns reaches the judge unchanged; anything else is refused."""
    import numpy as np

    namespace = {}
    exec(judge.RECORDER, namespace)
    values = {"f": lambda: (np.arange(6.0).reshape(2, 3), 2.5, np.float64(np.nan)),
              "g": lambda: {"a": [1, True, None, "s"], 3: np.array([[True], [False]])},
              "h": lambda: object()}
    records = tmp_path / "records.jsonl"
    recorder = namespace["_GradingRecorder"](values, str(records), 100)
    recorder.begin("ex-x-tests", ["f", "g", "h"])
    results = (values["f"](), values["g"](), values["h"]())
    recorder.end()
    stand_ins = judge.replayers(judge.read_records(records)["ex-x-tests"])
    array, number, nan = stand_ins["f"]()
    assert np.array_equal(array, results[0][0]) and array.dtype == float and number == 2.5 and np.isnan(nan)
    mapping = stand_ins["g"]()
    assert mapping["a"] == [1, True, None, "s"]
    assert np.array_equal(mapping[3], results[1][3]) and mapping[3].dtype == bool
    with pytest.raises(TypeError, match="object"):
        stand_ins["h"]()
