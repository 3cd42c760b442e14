"""Grading a class: every student accounted for, gradebook files that import, and the same grades
whether students are graded one by one, in parallel, or in shards merged afterwards."""

import csv
import filecmp
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_coursework import short_notebook

# make test runs this file on one pytest-xdist worker (--dist loadgroup): its tests share
# module fixtures that build or grade once.
pytestmark = pytest.mark.xdist_group("class")

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "coursework.py"
CHAPTER = "02_ridge"   # the class hands in this chapter, as short notebooks (short_notebook)


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def rows(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def klass(tmp_path_factory, grade_flags):
    """A class of eight on the roster, in every layout an instructor receives."""
    base = tmp_path_factory.mktemp("class")
    reference = ROOT / "book" / f"{CHAPTER}.ipynb"
    subs = base / "subs"
    (subs / "José García").mkdir(parents=True)
    (subs / "Josè García").mkdir()
    (subs / "李雷").mkdir()
    (subs / "Empty Folder").mkdir()
    (subs / "Ada Lovelace_4242_assignsubmission_file_").mkdir()
    # Each hands in the questions' own cells (short_notebook): the class is about names and
    # layouts, so the rest of the chapter need not run for every student.
    short = short_notebook(nbformat.read(reference, as_version=4))
    nbformat.write(short, subs / "José García" / f"{CHAPTER}.ipynb")
    stub = short_notebook(nbformat.read(reference, as_version=4))
    for cell in stub.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "raise NotImplementedError()"
    nbformat.write(stub, subs / "Josè García" / f"Copy of {CHAPTER}.ipynb")
    nbformat.write(short, subs / "李雷" / f"{CHAPTER} (1).ipynb")
    nbformat.write(short, subs / "Ada Lovelace_4242_assignsubmission_file_" / f"{CHAPTER}.ipynb")
    nbformat.write(short, subs / f"hopperg_LATE_777_9001_{CHAPTER}-1.ipynb")  # Canvas flat download
    (subs / "stray.ipynb").write_text("{}")                                   # nobody's
    roster = base / "roster.csv"
    roster.write_text(
        "id,name,folder\n"
        "s1,José García,\n"
        "s2,Josè García,\n"
        "s3,李雷,\n"
        "s4,Empty Folder,\n"
        "s5,Ada Lovelace,\n"
        "777,Grace Hopper,hopperg\n"
        "s7,Never Handed In,\n",
        encoding="utf-8")
    return base, subs, roster, grade_flags


def grade(klass, name, *extra):
    base, subs, roster, flags = klass
    out = base / name
    result = run("grade", subs, "--roster", roster, "--chapters", CHAPTER, "--output", out, "--timeout", 60,
                 *flags, *extra)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (base / f"{name}.log").write_text(result.stdout)
    return out, result.stdout


@pytest.fixture(scope="module")
def serial(klass):
    """The class graded in two shards, each one student at a time, and merged."""
    halves = [grade(klass, f"shard{i}", "--jobs", 1, "--shard", f"{i}/2")[0] for i in (1, 2)]
    merged = klass[0] / "serial"
    result = run("merge", *halves, "--output", merged)
    assert result.returncode == 0, result.stderr
    stdout = (klass[0] / "shard1.log").read_text() + (klass[0] / "shard2.log").read_text()
    return merged, stdout


def test_every_rostered_student_gets_a_row(serial):
    out, stdout = serial
    by_id = {r["student_id"]: r for r in rows(out / "students.csv")}
    assert set(by_id) == {"s1", "s2", "s3", "s4", "s5", "777", "s7"}
    full = float(by_id["s1"]["max_total"])
    assert full > 0
    for sid in ("s1", "s3", "s5", "777"):  # reference answers, in four layouts and names
        assert float(by_id[sid]["total"]) == full, by_id[sid]
    for sid in ("s2", "s4", "s7"):          # a stub, an empty folder, nothing at all
        assert float(by_id[sid]["total"]) == 0, by_id[sid]
    feedback = {r["student_id"]: r["feedback"] for r in rows(out / "grades.csv")}
    assert "no submission" in feedback["s4"] and "no submission" in feedback["s7"]
    assert "not attempted" in feedback["s2"]
    assert "stray.ipynb" in stdout and "names no student" in stdout


def test_accented_and_non_latin_names_stay_distinct(serial):
    out, _ = serial
    files = sorted(p.name for p in (out / "feedback").iterdir())
    assert len(files) == 7 == len(set(files)), files
    texts = [p.read_text(encoding="utf-8") for p in (out / "feedback").iterdir()]
    assert any("José García" in t for t in texts) and any("Josè García" in t for t in texts)
    assert any("李雷" in t for t in texts)


def test_renamed_files_are_graded_and_reported(serial):
    out, _ = serial
    notes = {(n["student_id"], n["note"]) for n in rows(out / "notes.csv")}
    assert any(sid == "s2" and "Copy of" in note and "renamed" in note for sid, note in notes), notes
    assert any(sid == "s3" and "(1)" in note for sid, note in notes), notes
    assert any(sid == "777" and "-1.ipynb" in note for sid, note in notes), notes


def test_gradebook_files_carry_ids_and_import_encoding(serial):
    out, _ = serial
    for name in ("canvas.csv", "moodle.csv", "students.csv", "grades.csv"):
        assert (out / name).read_bytes().startswith(b"\xef\xbb\xbf"), f"{name}: UTF-8 with BOM for Excel"
    canvas = rows(out / "canvas.csv")
    assert list(canvas[0])[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[0]["Student"] == "Points Possible" and float(canvas[0][CHAPTER]) > 0
    assert {r["SIS User ID"] for r in canvas[1:]} == {"s1", "s2", "s3", "s4", "s5", "777", "s7"}
    moodle = rows(out / "moodle.csv")
    assert list(moodle[0]) == ["ID number", "Full name", CHAPTER]
    assert {r["Full name"] for r in moodle} >= {"José García", "Josè García", "李雷"}


def test_a_run_never_writes_into_an_earlier_one(serial, klass):
    out, _ = serial
    base, subs, roster, flags = klass
    result = run("grade", subs, "--roster", roster, "--chapters", CHAPTER, "--output", out, *flags)
    assert result.returncode == 2 and "already holds results" in result.stderr


def test_parallel_grading_matches_serial_shards_merged(serial, klass):
    """Each shard graded one student at a time and merged gives the bytes of the whole class graded
    two students at a time: parallel = serial, and merged shards = unsharded."""
    out, _ = serial
    parallel, _ = grade(klass, "parallel", "--jobs", 2)
    comparison = filecmp.dircmp(out, parallel)
    assert not (comparison.diff_files or comparison.left_only or comparison.right_only)
    for name in ("grades.csv", "students.csv", "canvas.csv", "moodle.csv", "notes.csv"):
        assert (out / name).read_bytes() == (parallel / name).read_bytes(), name
    for path in (out / "feedback").iterdir():
        assert path.read_bytes() == (parallel / "feedback" / path.name).read_bytes(), path.name


def test_file_names_keep_students_apart():
    from submissions import file_key  # tools/ is on sys.path (conftest.py)

    names = ["José García", "Josè García", "José_García", "Jose Garcia", "李雷", "李 雷"]
    assert len({file_key(n) for n in names}) == len(names)
    assert file_key("李雷") == "李雷" and file_key("ada") == "ada"
