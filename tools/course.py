"""The course as nbgrader sees it: which chapters are assignments, and a throw-away nbgrader course
directory in which they are released. Shared by the student notebooks and the grader."""

import functools
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
# Left in a student notebook, any of these would leak a solution or a hidden test.
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "{solution}")
WRITTEN_SOLUTION = re.compile(r"^\s*```\{solution\}")


class UsageError(Exception):
    """Bad input from the person running the command: reported in one line, exit status 2."""


def chapters():
    """Chapter notebooks that carry autograded exercises, by stem, in file order."""
    import nbformat

    found = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
            found[path.stem] = path
    return found


def pick_chapters(names):
    """The chapters named (all when none is), as {stem: path}; a name may omit `.ipynb`."""
    available = chapters()
    if not names:
        return available
    stems = [n.removesuffix(".ipynb") for n in names]
    unknown = [n for n, stem in zip(names, stems, strict=True) if stem not in available]
    if unknown:
        raise UsageError(f"unknown chapter {', '.join(unknown)}; choose from: {', '.join(available)}")
    return {stem: available[stem] for stem in stems}


def without_written_solutions(path):
    """The notebook with every markdown cell that holds a {solution} directive removed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "markdown" and WRITTEN_SOLUTION.match(c.source))]
    return nb


def student_source(path):
    """The chapter as nbgrader receives it: written solutions removed, and the cells that make a
    student notebook stand alone (a "How to submit" cell, an answer cell per written exercise)."""
    import standalone

    return standalone.student_cells(without_written_solutions(path), Path(path).stem)


@functools.cache
def alembic_head():
    """The revision nbgrader stamps on a new gradebook. nbgrader asks a fresh `alembic heads`
    process for it (about 1.5 s per new gradebook: once per release); alembic's own API gives the
    same answer in this process (test_tools.py compares them). nbgrader is pinned exactly
    (requirements-dev.txt), so the private helper used here cannot move unnoticed."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        return ScriptDirectory.from_config(Config(ini)).get_current_head()


def nbgrader_api(course, timeout=60, sandbox_memory_mb=None):
    """An NbGraderAPI on a fresh course directory (absolute paths: nbgrader needs them). With a
    memory cap, notebooks run in the sandboxed kernel (sandbox.py) instead of plain `python3`."""
    # nbgrader runs `alembic` by name, from its revision lookup (replaced below by alembic_head) and
    # its database upgrades: make this interpreter's scripts findable, should any path reach them.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    import nbgrader.api
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    nbgrader.api.get_alembic_version = alembic_head
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    config.Execute.timeout = timeout
    # Deleted test cells are put back by judge.instrument, before nbgrader runs the notebook. Left
    # on, nbgrader would also re-add every hand-graded answer cell a submission lacks (the graded
    # notebook drops them), as cells without an id: a warning per student, an error in later nbformat.
    config.OverwriteCells.add_missing_cells = False
    if sandbox_memory_mb:
        import sandbox

        environment, manager = sandbox.install_kernel(course, sandbox_memory_mb)
        os.environ.update(environment)
        config.Execute.kernel_name = sandbox.KERNEL_NAME
        for name, value in manager.items():
            setattr(config.KernelManager, name, value)
    return NbGraderAPI(config=config)


def release(api, course, selected, rewrite=None):
    """Copy the chosen chapters into the course's source/ and generate their student versions.

    The grader releases them too, to build nbgrader's database, so both get the same cells
    (student_source). `rewrite(name, notebook)`, given by `make student` only, then changes the
    markdown that nbgrader does not manage (see standalone.py)."""
    import nbformat

    for name, path in selected.items():
        source = course / "source" / name
        source.mkdir(parents=True)
        nb = student_source(path)
        nbformat.write(rewrite(name, nb) if rewrite else nb, source / f"{name}.ipynb")
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not generate {name}: {result['error']}\n{result['log']}")
    return {name: course / "release" / name / f"{name}.ipynb" for name in selected}


def check_no_leaks(path):
    text = path.read_text(encoding="utf-8")
    leaks = [m for m in LEAK_MARKERS if m in text]
    if leaks:
        raise RuntimeError(f"{path.name} still contains {leaks}: refusing to write a student notebook")
