"""Student notebooks: the chapters with their solutions removed, released by nbgrader, and
written to read well in plain JupyterLab or Colab (standalone.py)."""

import shutil
import tempfile
from pathlib import Path

from book_toc import execution_cache
from course import check_no_leaks, nbgrader_api, release
from glue_values import glued_values
from plain_markdown import read_book
from standalone import plain_markdown_cells


def write_student_notebooks(selected, output, jobs=None):
    """Release the chosen chapters ({stem: path}) into `output`, replacing what was there. The values
    each chapter's prose glues in come from the book build's run of it, or from running it once
    (`jobs` at a time) where the build has not."""
    output = Path(output).resolve()
    glued = glued_values(selected, jobs, cache_dir=execution_cache())
    book = read_book()
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        released = release(nbgrader_api(course), course, selected,
                            lambda name, nb: plain_markdown_cells(nb, name, glued[name], book))
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        for path in released.values():
            check_no_leaks(path)
            shutil.copy(path, output / path.name)
    return output, len(released)
