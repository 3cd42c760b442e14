"""Test harness: deprecations in notebook code fail the tests; tools/ is importable."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def pytest_unconfigure(config):
    created = getattr(config, "l1l2_ipython_dir", None)
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


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
