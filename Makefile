# Two commands do everything on a fresh machine: `make book` and `make test`.
# Every target uses one virtual environment, .venv, rebuilt whenever a requirements file changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# nbgrader starts `alembic` by name, so the venv's bin/ must be on PATH for the coursework targets.
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The book to build; the tests point it at a throw-away book to prove that a failing cell fails the build.
BOOK_ROOT ?= .
SUBMISSIONS ?=

.PHONY: help book test bench student grade clean

help:
	@echo "make book     build the HTML book into _build/html (executes every notebook)"
	@echo "make test     run the whole test suite (structure, notebooks, build, coursework)"
	@echo "make bench    time each notebook, the book build and the coursework tools"
	@echo "make student  write the student notebooks (solutions removed) to _build/student"
	@echo "make grade SUBMISSIONS=dir   grade dir/<student>/<chapter>.ipynb into _build/grades.csv"
	@echo "make clean    remove _build (keeps .venv)"

# The stamp is newer than requirements.txt only if the venv was made from this exact file.
$(VENV)/.book-installed: requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.coursework-installed: $(VENV)/.book-installed requirements-coursework.txt
	$(BIN)/python -m pip install --quiet -r requirements-coursework.txt
	touch $@

book: $(VENV)/.book-installed
	$(BIN)/jupyter-book build $(BOOK_ROOT) --warningiserror --keep-going
	@echo "The book is at $(abspath $(BOOK_ROOT))/_build/html/index.html"

test: $(VENV)/.coursework-installed
	$(BIN)/python -m pytest

bench: $(VENV)/.coursework-installed
	$(BIN)/python tools/bench.py

student: $(VENV)/.coursework-installed
	$(BIN)/python tools/coursework.py student

grade: $(VENV)/.coursework-installed
	$(BIN)/python tools/coursework.py grade "$(SUBMISSIONS)"

clean:
	rm -rf _build
