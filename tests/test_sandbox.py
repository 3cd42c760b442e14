"""The sandbox for student code: hostile submissions try each escape, fail, are graded, and leave
every other grade unchanged; and without the sandbox `make grade` refuses unless told otherwise.

Each hostile student hands in the reference answers with an escape attempt pasted at the top of
their first answer cell. An escape that succeeds raises `RuntimeError("ESCAPED ...")` there, which
costs the student that question and names the escape in the feedback; one that fails changes
nothing, so the hostile student scores full marks like the honest one. Two last students do what
the sandbox must allow: one starts worker processes, as scikit-learn's `n_jobs` does through
joblib; the other checks that its kernel reads the font cache the grader hands it.
"""

import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from test_coursework import short_notebook, totals, write_short

# make test runs this file on one pytest-xdist worker (--dist loadgroup): its tests share
# module fixtures that build or grade once.
pytestmark = pytest.mark.xdist_group("sandbox")

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "coursework.py"
CHAPTER = "02_ridge"


def run(*args, env=None):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def escapes(secret_path, outside_path, port):
    """Python sources, one per escape, each raising RuntimeError('ESCAPED ...') if it works."""
    return {
        "reads_a_classmate": f"""
try:
    _leak = open({str(secret_path)!r}).read()
except OSError:
    _leak = None
if _leak is not None:
    raise RuntimeError("ESCAPED: read a classmate's notebook")
""",
        "reaches_the_network": f"""
import socket as _socket
try:
    _socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    _reached = True
except OSError:
    _reached = False
if _reached:
    raise RuntimeError("ESCAPED: connected to 127.0.0.1")
""",
        "writes_outside": f"""
try:
    open({str(outside_path)!r}, "w").write("pwned")
    _wrote = True
except OSError:
    _wrote = False
if _wrote:
    raise RuntimeError("ESCAPED: wrote outside its folder")
""",
        "allocates_past_the_cap": """
import numpy as _np
try:
    _big = _np.empty(6 * 2**30, dtype=_np.uint8)  # 6 GB of address space, past the 4 GB cap
    del _big
    _got = True
except MemoryError:
    _got = False
if _got:
    raise RuntimeError("ESCAPED: allocated past the memory cap")
""",
        "forks_repeatedly": """
import subprocess as _sp
_children = []
try:
    for _ in range(600):
        _children.append(_sp.Popen(["sleep", "30"]))
except OSError:
    pass
for _child in _children:
    _child.kill()
    _child.wait()
if len(_children) >= 600:
    raise RuntimeError("ESCAPED: started 600 processes")
""",
    }


# Lawful, and it must keep working in the sandbox: joblib's worker processes (loky, which
# scikit-learn's n_jobs uses). The process ids show that the jobs ran in other processes: where
# joblib cannot start workers, it falls back to running the jobs in the calling process.
STARTS_WORKERS = """
import os as _os
from joblib import Parallel, delayed
_pids = Parallel(n_jobs=2)(delayed(_os.getpid)() for _ in range(4))
if _os.getpid() in _pids:
    raise RuntimeError("joblib ran its jobs in the kernel's own process")
"""

# Lawful too: matplotlib in the kernel reads the font cache the grader hands it
# (sandbox.copy_font_cache) instead of building one in its empty HOME, a third of a second per
# notebook. The copy keeps the modification time of the grader's file; a cache built or rewritten
# in the kernel would not have it. The time expected is that of a probe copy made the same way where
# the grader makes its course folders, should that filesystem keep fewer digits than the original's.
def reads_font_cache_source(probe_folder):
    import sandbox

    stamps = {}
    for path in sandbox.font_cache_files():
        stamps[path.name] = shutil.copy2(path, probe_folder / path.name).stat().st_mtime_ns
    if not stamps:  # fails this student's test only, not the escapes'
        return 'raise RuntimeError("the grader\'s matplotlib has no font cache to hand over")\n'
    return f"""
import os as _os, matplotlib as _mpl, matplotlib.font_manager as _fm
_name = f"fontlist-v{{_fm.FontManager.__version__}}.json"
_cache = _os.path.join(_mpl.get_cachedir(), _name)
if not _os.path.isfile(_cache) or _os.stat(_cache).st_mtime_ns != {stamps!r}.get(_name):
    raise RuntimeError(f"matplotlib built its font cache in the kernel, in {{_mpl.get_cachedir()}}")
"""


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    import sandbox  # tools/ is on sys.path (conftest.py)

    reason = sandbox.unavailable()
    if reason:
        if os.environ.get("L1L2_REQUIRE_SYSTEM_TOOLS") == "1":
            pytest.fail(f"the grading sandbox is unavailable: {reason}")
        pytest.skip(f"SKIPPED: the grading sandbox is unavailable: {reason}")
    base = tmp_path_factory.mktemp("hostile")
    subs = base / "subs"
    reference = ROOT / "book" / f"{CHAPTER}.ipynb"
    honest = subs / "honest" / f"{CHAPTER}.ipynb"
    # Every student hands in the questions' own cells (short_notebook): the escapes, not the chapter,
    # are what is tested.
    write_short(reference, honest)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    outside = base / "pwned.txt"
    attempts = escapes(honest, outside, listener.getsockname()[1])
    probe = Path(tempfile.mkdtemp(prefix="font-probe-"))  # where the grader's course folders go
    try:
        font_check = reads_font_cache_source(probe)
    finally:
        shutil.rmtree(probe)
    lawful = {"starts_workers": STARTS_WORKERS, "reads_the_font_cache": font_check}
    for name, attack in {**attempts, **lawful}.items():
        nb = short_notebook(nbformat.read(reference, as_version=4))
        # In an answer cell that may use any library: an escape that works raises in the answer, which
        # the feedback quotes and the score shows.
        first = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                     and "numpy-only" not in c.metadata.get("tags", []))
        first.source = attack + "\n" + first.source
        (subs / name).mkdir()
        nbformat.write(nb, subs / name / f"{CHAPTER}.ipynb")
    out = base / "run"
    extra = os.environ.get("L1L2_SANDBOX_TEST_FLAGS", "").split()  # lets a developer see the escapes work
    result = run("grade", subs, "--chapters", CHAPTER, "--output", out, "--jobs", 2, *extra)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    try:
        connection, _ = listener.accept()
        connection.close()
        connected = True
    except BlockingIOError:
        connected = False
    listener.close()
    with open(out / "grades.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return rows, list(attempts), outside, connected


def test_every_escape_fails_and_is_graded(hostile_class):
    rows, attempts, outside, connected = hostile_class
    honest, most = totals(rows, "honest")
    assert honest == most > 0
    for name in attempts:
        mine = [r for r in rows if r["student"] == name]
        assert mine, f"{name}: not graded"
        escaped = [r["feedback"] for r in mine if "ESCAPED" in r["feedback"]]
        assert not escaped, f"{name}: {escaped}"
        assert sum(float(r["score"]) for r in mine) == honest, (name, mine)
    assert not outside.exists(), "a student wrote outside its folder"
    assert not connected, "a student reached a listener on 127.0.0.1"


def test_worker_processes_run_in_the_sandbox(hostile_class):
    rows = hostile_class[0]
    score, most = totals(rows, "starts_workers")  # graded (most > 0), and in full
    assert score == most > 0, [r["feedback"] for r in rows if r["student"] == "starts_workers"]


def test_the_kernel_reads_the_graders_font_cache(hostile_class):
    rows = hostile_class[0]
    score, most = totals(rows, "reads_the_font_cache")
    assert score == most > 0, [r["feedback"] for r in rows if r["student"] == "reads_the_font_cache"]


def test_grading_refuses_without_the_sandbox_unless_told(tmp_path):
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    notebook = (ROOT / "book" / f"{CHAPTER}.ipynb").read_bytes()
    (tmp_path / "subs" / "ada" / f"{CHAPTER}.ipynb").write_bytes(notebook)
    no_bwrap = dict(os.environ, PATH=str(Path(sys.executable).parent))  # bwrap is not on this PATH
    result = run("grade", tmp_path / "subs", "--output", tmp_path / "run", env=no_bwrap)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--no-sandbox" in result.stderr
    assert not (tmp_path / "run").exists()
