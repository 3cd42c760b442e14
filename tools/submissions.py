"""Who handed in what: students from a roster or from the submission folder, and their notebooks.

Layouts accepted in the submissions folder (they may be mixed):

- one folder per student, named after the student, holding `<chapter>.ipynb`
  (Moodle's "Full Name_12345_assignsubmission_file_" folders count, the suffix dropped);
- one flat folder of files whose name carries the student, as learning platforms bulk-download
  them: Canvas `login_12345_67890_<file>` (or `login_LATE_12345_67890_<file>`) and Moodle
  `Full Name_12345_assignsubmission_file_<file>`.

A file is recognised as a chapter even when renamed the usual ways (`Copy of 02_ridge.ipynb`,
`02_ridge (1).ipynb`, Canvas's resubmission `02_ridge-1.ipynb`); the renaming is reported.
Names are compared exactly (after Unicode NFC normalisation), so two students whose names differ
only by an accent stay two students.
"""

import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from course import UsageError

CANVAS_FILE = re.compile(r"^(?P<who>[^_]+)(?:_LATE)?_(?P<lms_id>\d+)_\d+_(?P<file>.+)$")
MOODLE_FILE = re.compile(r"^(?P<who>.+?)_(?P<lms_id>\d+)_assignsubmission_file_(?P<file>.+)$")
MOODLE_FOLDER = re.compile(r"^(?P<who>.+?)_(?P<lms_id>\d+)_assignsubmission_file_?$")
RENAMED = [re.compile(r"^(?:copy of )+", re.IGNORECASE),  # Google Drive and Colab
           re.compile(r"\s*\(\d+\)$"),                   # browsers: "02_ridge (1)"
           re.compile(r"-\d+$")]                          # Canvas resubmissions: "02_ridge-1"


def normal(text):
    return unicodedata.normalize("NFC", text).strip()


def file_key(name):
    """A file-system-safe name for a student, different for different names."""
    safe = re.sub(r"[^\w.-]+", "_", normal(name), flags=re.UNICODE).strip("._") or "student"
    if safe == normal(name):
        return safe
    return f"{safe}-{hashlib.sha256(normal(name).encode()).hexdigest()[:8]}"


@dataclass
class Student:
    key: str                        # unique: the roster id, or the name found in the submissions
    name: str
    roster_id: str = ""
    on_roster: bool = False
    aliases: set = field(default_factory=set)       # names and LMS ids that identify this student
    files: dict = field(default_factory=dict)       # chapter stem -> path
    notes: list = field(default_factory=list)       # renamed files, duplicates, strays


def read_roster(path):
    """Students from a CSV with the columns id and name, and optionally folder (the name their
    submissions are filed under, when it is neither the id nor the name)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            columns = set(rows[0]) if rows else set()
    except OSError:
        raise UsageError(f"roster not found: {path}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"roster {path.name} is not a UTF-8 CSV file ({error})") from None
    if not rows:
        raise UsageError(f"roster {path.name} has no students")
    missing = {"id", "name"} - {c.strip().lower() for c in columns if c}
    if missing:
        raise UsageError(f"roster {path.name} lacks the column(s) {', '.join(sorted(missing))} "
                         "(expected: id,name[,folder])")
    students, seen = [], set()
    for number, row in enumerate(rows, 2):
        row = {(k or "").strip().lower(): normal(v or "") for k, v in row.items()}
        if not row["id"] or not row["name"]:
            raise UsageError(f"roster {path.name}, line {number}: id and name must not be empty")
        if row["id"] in seen:
            raise UsageError(f"roster {path.name}, line {number}: the id {row['id']} appears twice")
        seen.add(row["id"])
        aliases = {row["id"], row["name"]} | ({row["folder"]} if row.get("folder") else set())
        students.append(Student(row["id"], row["name"], row["id"], True, aliases))
    return students


def chapter_of(filename, chapters):
    """(chapter stem, renamed?) for a file name, or (None, False) if it is no chapter notebook."""
    stem, dot, suffix = normal(filename).rpartition(".")
    if not dot or suffix.lower() != "ipynb":
        return None, False
    if stem in chapters:
        return stem, False
    bare = stem
    for pattern in RENAMED:
        bare = pattern.sub("", bare)
    return (bare, True) if bare in chapters else (None, False)


def discover(folder, chapters, roster=None):
    """Every student (rostered or found), with the notebook handed in for each chapter, and the
    problems that concern no single student (files nobody can be matched to)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"submissions folder not found: {folder}")
    students = {s.key: s for s in (roster or [])}
    by_alias = {alias: s for s in students.values() for alias in s.aliases}
    problems = []

    def student_for(who, lms_id=""):
        found = by_alias.get(normal(who)) or (by_alias.get(lms_id) if lms_id else None)
        if found is None:
            if roster is not None:
                problems.append(f"not on the roster, graded all the same: {who}")
            key = normal(who)
            found = students.setdefault(key, Student(key, key, aliases={key}))
            by_alias[key] = found
        return found

    def hand_in(student, path, shown_name):
        chapter, renamed = chapter_of(shown_name, chapters)
        if chapter is None:
            student.notes.append(f"{shown_name}: not a notebook of this course: ignored")
            return
        earlier = student.files.get(chapter)
        if earlier is not None:
            keep, drop = sorted([earlier, path], key=lambda p: (p.stat().st_mtime, p.name))[::-1]
            student.files[chapter] = keep
            student.notes.append(f"{chapter}: two files handed in; graded {keep.name}, ignored {drop.name}")
            return
        student.files[chapter] = path
        if renamed:
            student.notes.append(f"{chapter}: graded {shown_name} (renamed)")

    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folder_name = MOODLE_FOLDER.match(normal(entry.name))
            who, lms_id = (folder_name["who"], folder_name["lms_id"]) if folder_name else (entry.name, "")
            student = student_for(who, lms_id)
            for item in sorted(entry.iterdir()):
                if not item.name.startswith(".") and item.is_file():
                    hand_in(student, item, item.name)
            continue
        flat = CANVAS_FILE.match(normal(entry.name)) or MOODLE_FILE.match(normal(entry.name))
        if flat:
            hand_in(student_for(flat["who"], flat["lms_id"]), entry, flat["file"])
        else:
            problems.append(f"ignored {entry.name}: its name names no student (expected a folder per "
                            "student or an LMS bulk-download file name)")
    if not students:
        raise UsageError(f"no submissions in {folder} (expected {folder}/<student>/<chapter>.ipynb "
                         "or an LMS bulk download)")
    return sorted(students.values(), key=lambda s: s.key), list(dict.fromkeys(problems))


def shard(students, spec):
    """The deterministic slice `i/N` (1 ≤ i ≤ N) of the students, sorted by key: every N-th."""
    match = re.fullmatch(r"(\d+)/(\d+)", spec or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--shard takes i/N with 1 <= i <= N, e.g. 2/4 (got {spec!r})")
    index, count = int(match[1]), int(match[2])
    return [s for position, s in enumerate(sorted(students, key=lambda s: s.key))
            if position % count == index - 1]
