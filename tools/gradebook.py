"""What a grading run writes, and how runs are merged.

A run writes a folder of its own (never into an earlier run's):

- `grades.csv`: one row per student, chapter and question, with the feedback;
- `students.csv`: one row per student with each chapter's total;
- `canvas.csv` and `moodle.csv`: the same totals laid out for those gradebooks' CSV import;
- `notes.csv`: renamed or duplicate files, strays, students not on the roster;
- `feedback/<student>.txt`: what each student is told.

Every CSV is UTF-8 with a byte-order mark, which Excel needs to show accented names and which
Canvas and Moodle both accept. `merge` joins several runs (shards of one class, or chapters
graded on different days): for each student and chapter, the run named last wins.
"""

import csv
from pathlib import Path

from course import UsageError
from submissions import file_key

GRADES = ["student_id", "student", "notebook", "question", "score", "max_score", "feedback"]
NOTES = ["student_id", "student", "note"]
ENCODING = "utf-8-sig"


def fmt(number):
    return f"{float(number):g}"


def write_csv(path, header, rows):
    with path.open("w", newline="", encoding=ENCODING) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path):
    try:
        with path.open(newline="", encoding=ENCODING) as handle:
            return list(csv.DictReader(handle))
    except OSError:
        raise UsageError(f"not a grading run (no {path.name}): {path.parent}") from None


def refuse_earlier_run(path):
    """Stop, before any work, if `path` already holds results: runs are never mixed."""
    path = Path(path).resolve()
    if path.exists() and any(path.iterdir()):
        raise UsageError(f"{path} already holds results; name a new folder (runs are never mixed)")
    return path


def fresh_run_folder(path):
    path = refuse_earlier_run(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def student_label(row):
    return row["student_id"] or row["student"]


def write_run(folder, grades, notes):
    """Write every output of a run from its rows (dicts with the GRADES and NOTES fields)."""
    folder = fresh_run_folder(folder)
    grades = sorted(grades, key=lambda r: (student_label(r), r["notebook"], r["question"]))
    notes = sorted(notes, key=lambda n: (student_label(n), n["note"]))
    write_csv(folder / "grades.csv", GRADES, [[r[k] for k in GRADES] for r in grades])
    write_csv(folder / "notes.csv", NOTES, [[r[k] for k in NOTES] for r in notes])
    chapters = sorted({r["notebook"] for r in grades})
    students = {}
    for r in grades:
        entry = students.setdefault(student_label(r), {"id": r["student_id"], "name": r["student"],
                                                        "score": {}, "max": {}})
        entry["score"][r["notebook"]] = entry["score"].get(r["notebook"], 0.0) + float(r["score"])
        entry["max"][r["notebook"]] = entry["max"].get(r["notebook"], 0.0) + float(r["max_score"])
    possible = {c: max((s["max"].get(c, 0.0) for s in students.values()), default=0.0) for c in chapters}

    totals = [[s["id"], s["name"], *(fmt(s["score"].get(c, 0)) for c in chapters),
               fmt(sum(s["score"].values())), fmt(sum(s["max"].values()))] for s in students.values()]
    write_csv(folder / "students.csv", ["student_id", "student", *chapters, "total", "max_total"], totals)
    # Canvas: its gradebook export's columns; a "Points Possible" row; students matched by SIS User ID.
    canvas = [["Points Possible", "", "", "", "", *(fmt(possible[c]) for c in chapters)]]
    canvas += [[s["name"], "", s["id"], "", "", *(fmt(s["score"].get(c, 0)) for c in chapters)]
               for s in students.values()]
    write_csv(folder / "canvas.csv", ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *chapters],
              canvas)
    # Moodle: map "ID number" to the user's ID number in "Import > CSV file", each chapter to a grade item.
    moodle = [[s["id"], s["name"], *(fmt(s["score"].get(c, 0)) for c in chapters)] for s in students.values()]
    write_csv(folder / "moodle.csv", ["ID number", "Full name", *chapters], moodle)
    write_feedback(folder / "feedback", grades, notes)
    return folder


def write_feedback(directory, grades, notes):
    directory.mkdir()
    by_student = {}
    for r in grades:
        by_student.setdefault(student_label(r), []).append(r)
    for label, rows in by_student.items():
        total, most = sum(float(r["score"]) for r in rows), sum(float(r["max_score"]) for r in rows)
        lines = [f"Feedback for {rows[0]['student']}: {total:g} / {most:g} points", ""]
        lines += [f"- {r['notebook']} / {r['question']}: {fmt(r['score'])} / {fmt(r['max_score'])} — "
                  f"{r['feedback']}" for r in rows]
        mine = [n["note"] for n in notes if student_label(n) == label]
        if mine:
            lines += ["", "Notes:", *(f"- {n}" for n in mine)]
        (directory / f"{file_key(label)}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def merge(run_folders, output):
    """Join runs: for each student and chapter the last run that graded it wins."""
    if not run_folders:
        raise UsageError("name the runs to merge")
    chosen, notes = {}, []
    for folder in map(Path, run_folders):
        rows = read_csv(folder / "grades.csv")
        pairs = {(student_label(r), r["notebook"]) for r in rows}
        chosen = {k: v for k, v in chosen.items() if (k[0], k[1]) not in pairs}
        for r in rows:
            chosen[(student_label(r), r["notebook"], r["question"])] = r
        notes += read_csv(folder / "notes.csv")
    unique_notes = list({(n["student_id"], n["student"], n["note"]): n for n in notes}.values())
    return write_run(output, list(chosen.values()), unique_notes)
