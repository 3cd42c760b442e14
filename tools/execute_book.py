"""Executes the book's notebooks in parallel into the build's execution cache, before Sphinx runs.

Usage: python tools/execute_book.py [BOOK_ROOT] [--jobs N]

Jupyter Book executes the notebooks that its cache lacks one after another, on one core. This
step fills the same cache (BOOK_ROOT/_build/.jupyter_cache, keyed on the code cells) with several
kernels at once, longest notebook first, so the build that follows finds every page executed.
A notebook that fails is not cached: its failing cell and traceback are printed, the others
finish, and the exit status is 1, so `make book` stops before Sphinx.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml
from book_toc import execution_cache, toc_notebooks
from claims import one_blas_thread

ROOT = Path(__file__).resolve().parent.parent


def cell_timeout(root):
    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8")) or {}
    return (config.get("execute") or {}).get("timeout", 30)


def execute_one(path, timeout):
    """Run one notebook as the build would (its folder as the working directory)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    return nb, result.time, result.exc_string if result.err is not None else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=ROOT,
                        help="the book's root (default: this project)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="notebooks run at once (default: one per core)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not (args.root / "_toc.yml").is_file():
        parser.error(f"no _toc.yml in {args.root}: not a book's root")

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(execution_cache(args.root)))
    last_seconds = {record.uri: record.data.get("execution_seconds", 0)
                    for record in cache.list_cache_records()}
    missing = []
    for path in toc_notebooks(args.root):
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            missing.append(path)
    if not missing:
        return 0
    # Longest first (as last cached; a notebook never run counts as long), so no core idles at the end.
    missing.sort(key=lambda p: -last_seconds.get(str(p), float("inf")))
    timeout = cell_timeout(args.root)
    # Several kernels at once on few cores: one BLAS thread each, or they oversubscribe the cores.
    if args.jobs > 1:
        one_blas_thread(os.environ)
    print(f"Executing {len(missing)} notebook(s), {min(args.jobs, len(missing))} at a time", flush=True)
    failed = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=min(args.jobs, len(missing))) as pool:
        futures = {pool.submit(execute_one, path, timeout): path for path in missing}
        for future in as_completed(futures):
            path = futures[future]
            nb, seconds, error = future.result()
            if error is not None:
                failed.append(path)
                print(f"{path.name} failed:\n{error}", flush=True)
                continue
            cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"  {path.name}: {seconds:.1f} s", flush=True)
    print(f"Executed in {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
