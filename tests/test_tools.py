"""The project tooling in tools/: the benchmark, the book's Sphinx extension, and code style."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def test_project_python_passes_ruff():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "tools", "tests"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def write_notebook(path, source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nb, path)
    return path


def test_bench_measures_a_notebook_in_a_fresh_kernel(tmp_path):
    path = write_notebook(tmp_path / "tiny.ipynb", "x = bytearray(50_000_000)")
    out = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), "--run-one", str(path)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seconds"] > 0
    assert result["peak_mb"] > 50, "the kernel held a 50 MB buffer: its peak must show it"


def test_bench_table_names_budgets(tmp_path):
    path = write_notebook(tmp_path / "tiny.ipynb", "1 + 1")
    out = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert "tiny.ipynb" in out and "budget" in out and "whole book" in out


def test_bench_rejects_what_is_not_a_notebook(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    out = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), str(tmp_path / "notes.txt")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not a notebook" in out.stderr and "Traceback" not in out.stderr


def test_downloads_lose_hidden_tests_only(tmp_path):
    import book_html  # tools/ is on sys.path (conftest.py)

    sources = tmp_path / "_sources" / "book"
    sources.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS"),
    ])
    nbformat.write(nb, sources / "ch.ipynb")

    class App:
        outdir = str(tmp_path)

        class builder:
            format = "html"

    book_html._reader_notebooks(App, None)
    kept = nbformat.read(sources / "ch.ipynb", as_version=4).cells
    assert [c.source for c in kept] == ["x = 1"]
    shutil.rmtree(sources)


def test_launch_buttons_follow_the_repository_url():
    import book_html

    class Config:
        def __init__(self, options):
            self.html_theme_options = options

    without = Config({"repository_url": "", "launch_buttons": {"binderhub_url": "", "colab_url": ""}})
    book_html._launch_buttons(None, without)
    assert without.html_theme_options["launch_buttons"] == {"binderhub_url": "", "colab_url": ""}

    with_repo = Config({"repository_url": "https://github.com/o/r", "launch_buttons": {"colab_url": ""}})
    book_html._launch_buttons(None, with_repo)
    buttons = with_repo.html_theme_options["launch_buttons"]
    assert buttons["binderhub_url"] == "https://mybinder.org"
    assert buttons["colab_url"] == "https://colab.research.google.com"


def test_solution_markers_are_dropped_from_rendered_code():
    import book_html
    from docutils import nodes

    code = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    doctree = nodes.section()
    doctree += nodes.literal_block(code, code, language="ipython3")
    book_html._drop_solution_markers(None, doctree)
    (block,) = doctree.findall(nodes.literal_block)
    assert block.astext() == "def f(x):\n    return 2 * x\n"
    assert block["language"] == "ipython3"
