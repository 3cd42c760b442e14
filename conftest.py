"""Test harness, at the root so that it applies to every pytest run (`pytest book/01_why_regularize.ipynb`
included): deprecations in notebook code fail the tests; nbval's runs fill the build's execution
cache; tools/ is importable."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))  # the tests use the project's own tooling

# Run by every IPython kernel the tests start (nbval, the book build). A FutureWarning or
# DeprecationWarning attributed to notebook code (module __main__) becomes an error;
# warnings raised inside libraries about their own internals are left alone.
_STARTUP = '''\
import warnings
for _category in (FutureWarning, DeprecationWarning):
    warnings.filterwarnings("error", category=_category, module="__main__")
del _category
'''


def pytest_configure(config):
    config.pluginmanager.register(CacheNbvalRuns(), "l1l2-cache-nbval-runs")
    if "IPYTHONDIR" in os.environ and os.environ.get("L1L2_HARNESS") == "1":
        return  # already set up (xdist workers inherit the controller's environment)
    ipython_dir = Path(tempfile.mkdtemp(prefix="l1l2-ipython-"))
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-deprecations-are-errors.py").write_text(_STARTUP)
    os.environ["IPYTHONDIR"] = str(ipython_dir)
    os.environ["L1L2_HARNESS"] = "1"
    config.l1l2_ipython_dir = ipython_dir
    # Two notebooks run at once on two cores: one BLAS thread per kernel avoids oversubscription,
    # which slows the small matrix products these notebooks make by up to an order of magnitude.
    import claims

    claims.one_blas_thread(os.environ)


def pytest_unconfigure(config):
    created = getattr(config, "l1l2_ipython_dir", None)
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


# `make test` keeps each test file that declares `pytestmark = pytest.mark.xdist_group(...)` on one
# pytest-xdist worker: those files share module fixtures (one book build, one graded class) and
# must not run beside each other's halves. xdist's own `--dist loadgroup` marks a group by
# rewriting `item._nodeid`, which pytest 9 no longer reads, so its groups were silently split
# across workers (two builds of the book then raced). This scheduler groups by file instead.
_GROUP_MARK = "pytestmark = pytest.mark.xdist_group("


def grouped_test_files(root=ROOT):
    """The test files (as nodeid prefixes) whose tests must share one worker."""
    return {path.relative_to(root).as_posix() for path in (root / "tests").glob("test_*.py")
            if _GROUP_MARK in path.read_text(encoding="utf-8")}


@pytest.hookimpl(optionalhook=True)  # known only where pytest-xdist is loaded
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    grouped = grouped_test_files(Path(str(config.rootpath)))

    class OneWorkerPerGroupedFile(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return path if path in grouped else nodeid

    return OneWorkerPerGroupedFile(config, log)


@pytest.fixture(scope="session")
def grade_flags():
    """Extra flags for `coursework.py grade`: none where the sandbox for student code can run.
    Without it, a developer's machine grades unconfined (said in the test's output); CI, which
    installs bubblewrap, fails instead."""
    import sandbox

    reason = sandbox.unavailable()
    if reason is None:
        return []
    if os.environ.get("L1L2_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(f"the grading sandbox is unavailable: {reason}")
    print(f"grading without the sandbox: {reason}")
    return ["--no-sandbox"]


# nbval's run of a book notebook is that notebook's one execution per `make test`: when every code
# cell passes, the executed notebook goes into the build's execution cache (keyed on the code
# cells, as Jupyter Book keys it), so the build, the student edition, the PDF and the browser tests
# that follow execute nothing again. Notebooks outside a book (no _toc.yml above them) are not cached.
def _book_root(path):
    for folder in Path(path).resolve().parents:
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    return None


class CacheNbvalRuns:
    """Registered as a plugin (a conftest's hooks would only see items under tests/)."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if call.when != "call" or type(item).__name__ != "IPyNbCell":
            return
        notebook = item.parent
        if not hasattr(notebook, "_l1l2_cells"):
            notebook._l1l2_cells = {"done": 0, "failed": False,
                                    "of": sum(cell.cell_type == "code" for cell in notebook.nb.cells)}
        state = notebook._l1l2_cells
        state["done"] += 1
        state["failed"] |= not outcome.get_result().passed
        item.cell.outputs = item.test_outputs or []
        item.cell.execution_count = state["done"]
        if state["done"] == state["of"] and not state["failed"]:
            _cache_executed(Path(str(notebook.fspath)), notebook.nb)


def _cache_executed(path, nb):
    import fcntl

    from book_toc import execution_cache
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    root = _book_root(path)
    if root is None:
        return
    cache_dir = execution_cache(root)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    # Two xdist workers may finish notebooks at the same moment: one writer at a time.
    with open(root / "_build" / ".jupyter_cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        get_cache(str(cache_dir)).cache_notebook_bundle(
            CacheBundleIn(nb, str(path), data={"executed_by": "nbval"}), check_validity=False, overwrite=True)
