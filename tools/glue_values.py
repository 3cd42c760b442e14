"""The values each chapter glues into its prose, as the book stores them, for the student notebooks.

A student notebook must show the numbers the book shows, but students open it in plain Jupyter,
where `{glue:text}` roles stay raw. So `make student` runs each chapter once, as plain Python
with the cell runner of claims.py (the book's own seed, no kernel, nothing downloaded), with a
`glue` that records what myst-nb would store: the value's text/plain form (and text/markdown
when it has one). plain_markdown.py then formats them exactly as myst-nb's roles do.

A chapter the book build (or nbval, in `make test`) has already executed is not run again: its
glued values are read from that run, in the build's execution cache, where myst-nb stores them.
The others run each in a fresh process forked from this one, like a kernel of its own, two at a
time on two cores; the libraries every chapter imports are loaded once, before the forks.
"""

import contextlib
import io
import multiprocessing
import os
import sys
import types
from pathlib import Path

import claims
from course import UsageError


def recording_glue(values):
    """A stand-in for the `myst_nb` module whose `glue` writes each value's mime bundle to `values`."""
    from IPython.core.formatters import PlainTextFormatter

    plain = PlainTextFormatter()  # what myst-nb's glue stores as text/plain, outside a kernel

    def glue(name, value, display=True):
        values[name] = {"text/plain": plain(value)}
        if hasattr(value, "_repr_markdown_"):
            values[name]["text/markdown"] = value._repr_markdown_()

    module = types.ModuleType("myst_nb")
    module.glue = glue
    return module


def chapter_values(path):
    """{key: mime bundle} for every value one chapter glues; runs the chapter in this process."""
    import numpy

    path = Path(path).resolve()
    claims.prepare_process(path.parent)  # Agg backend, one BLAS thread, the notebook's folder
    values = {}
    sys.modules["myst_nb"] = recording_glue(values)  # after prepare_process, which installs a no-op
    # Chapters draw from `rng` or pass random_state=SEED, but scikit-learn's liblinear, given no
    # random_state, seeds its shuffle from NumPy's global generator: fixed here, so that the same
    # chapter always gives the same student notebook.
    numpy.random.seed(0)
    sources = [cell.source for cell in claims.read_cells(path)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        outcome = claims.run_cells(sources, 0, claims.fresh_namespace(), path.stem)
    if outcome["status"] != "passed":
        first = (outcome["message"].splitlines() or [""])[0][:300]
        raise UsageError(f"{path.name}: code cell {outcome['cell']} failed ({outcome['error']}: {first}), "
                         "so its glued numbers are unknown; fix the chapter first")
    return values


GLUED_MIMES = ("text/plain", "text/markdown")


def cached_run(path, cache_dir):
    """The execution cache's run of this exact chapter (the notebook with its outputs), or None if the
    cache has none."""
    if not (Path(cache_dir) / "global.db").is_file():
        return None
    import nbformat
    from jupyter_cache import get_cache

    try:
        _, executed = get_cache(str(cache_dir)).merge_match_into_notebook(nbformat.read(path, as_version=4))
    except KeyError:
        return None
    return executed


def cached_values(path, cache_dir):
    """{key: mime bundle} from the execution cache's run of this exact chapter, or None if it has none."""
    executed = cached_run(path, cache_dir)
    if executed is None:
        return None
    values = {}
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if record:  # myst-nb's glue marks its outputs so; display=False prefixes the mime types
                prefix, data = record.get("mime_prefix", ""), output["data"]
                values[record["name"]] = {mime: data[prefix + mime] for mime in GLUED_MIMES
                                          if prefix + mime in data}
    return values


def glued_values(selected, jobs=None, cache_dir=None):
    """{chapter: {key: mime bundle}} for the chosen chapters ({stem: path}): from the execution cache
    where it holds the chapter, otherwise by running the chapter, `jobs` at a time."""
    cached = {}
    if cache_dir is not None:
        cached = {stem: values for stem, path in selected.items()
                  if (values := cached_values(path, cache_dir)) is not None}
    to_run = {stem: path for stem, path in selected.items() if stem not in cached}
    return {**cached, **run_for_values(to_run, jobs)} if to_run else cached


def run_for_values(selected, jobs=None):
    """{chapter: {key: mime bundle}}, each chapter run in a process of its own, `jobs` at a time."""
    claims.one_blas_thread(os.environ)  # before NumPy loads: the runs share the cores
    import matplotlib  # noqa: F401 - loaded once here, so that every forked chapter starts warm
    import numpy  # noqa: F401
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(selected)))
    with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=1) as pool:
        values = pool.map(chapter_values, list(selected.values()), chunksize=1)
    return dict(zip(selected, values, strict=True))
