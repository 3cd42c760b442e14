"""Student notebooks: the chapters with their solutions removed, released by nbgrader."""

import shutil
import tempfile
from pathlib import Path

from course import check_no_leaks, nbgrader_api, release


def write_student_notebooks(selected, output):
    """Release the chosen chapters ({stem: path}) into `output`, replacing what was there."""
    output = Path(output).resolve()
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course = Path(tmp)
        released = release(nbgrader_api(course), course, selected)
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        for path in released.values():
            check_no_leaks(path)
            shutil.copy(path, output / path.name)
    return output, len(released)
