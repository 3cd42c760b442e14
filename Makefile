# Two commands do everything on a fresh machine: `make book` and `make test`.
# Every target uses one virtual environment, .venv, rebuilt whenever a requirements file changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# nbgrader starts `alembic` by name to upgrade a gradebook (tools/course.py looks up a new one's
# revision itself), so the venv's bin/ stays on PATH for the coursework targets.
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The book to build; the tests point it at a throw-away book to prove that a failing cell fails the build.
BOOK_ROOT ?= .
# Extra flags for jupyter-book build; the tests pass --all to re-read every page, so that
# warnings from pages an incremental build would skip are reported too.
BOOK_FLAGS ?=
EDITION ?= instructor
# make grade: the submissions folder and, optionally, a roster, the assigned chapters, parallel jobs,
# a shard i/N, the run's output folder, the kernel's memory cap in MB, and SANDBOX=0 to grade
# without the sandbox (student code then runs with your privileges).
SUBMISSIONS ?=
TIMEOUT ?= 60
ROSTER ?=
CHAPTERS ?=
JOBS ?=
SHARD ?=
OUTPUT ?=
MEMORY ?= 4096
SANDBOX ?= 1
# KEEP_EXECUTED=1: also keep each executed notebook in the run folder (for reading written answers).
KEEP_EXECUTED ?=
RUNS ?=

.PHONY: help book pdf tex test robust mutants bench student grade merge clean

help:
	@echo "make book     build the HTML book into _build/html (executes every notebook)"
	@echo "make book EDITION=student   the edition without solutions, into _build/student-edition/_build/html"
	@echo "make test     run the whole test suite (structure, notebooks, build, coursework)"
	@echo "make pdf      build the PDF handout into _build/l1-l2-regularization.pdf (needs TeX Live)"
	@echo "make robust   run every notebook at five other seeds: a table notebook x seed (SEEDS=\"1 2 3\")"
	@echo "make mutants  run every chapter's wrong-world mutants and print each chapter's mutation score (MUTANT_SEED=0)"
	@echo "make bench    time each notebook, the book build and the coursework tools"
	@echo "make student  write the student notebooks (solutions removed) to _build/student"
	@echo "make grade SUBMISSIONS=dir [ROSTER=csv CHAPTERS=\"01_why_regularize ...\" JOBS=n SHARD=i/N OUTPUT=dir TIMEOUT=60]"
	@echo "              grade a class into a new run folder under _build/grades/ (see the instructor guide)"
	@echo "make merge RUNS=\"run1 run2 ...\" OUTPUT=dir   join grading runs (shards, or chapters graded apart)"
	@echo "make clean    remove _build (keeps .venv)"

# The stamp is newer than requirements.txt only if the venv was made from this exact file.
$(VENV)/.book-installed: requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.book-installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Builds of one book wait for each other (tools/one_build.py): they write the same files.
ONE_BUILD = $(BIN)/python tools/one_build.py $(BOOK_ROOT)

# Notebooks missing from the execution cache are run first, one per core (tools/execute_book.py);
# Sphinx then finds every page executed.
# EDITION=student: the edition without solutions, for courses that assign the exercises (it reuses
# the instructor build's execution cache; see tools/book_html.py).
ifeq ($(EDITION),student)
book: $(VENV)/.book-installed
	$(ONE_BUILD) $(BIN)/python tools/execute_book.py $(BOOK_ROOT)
	L1L2_EDITION=student $(ONE_BUILD) $(BIN)/jupyter-book build $(BOOK_ROOT) --path-output $(BOOK_ROOT)/_build/student-edition \
		--warningiserror --keep-going $(BOOK_FLAGS)
	@echo "The student edition is at $(abspath $(BOOK_ROOT))/_build/student-edition/_build/html/index.html"
else
book: $(VENV)/.book-installed
	$(ONE_BUILD) $(BIN)/python tools/execute_book.py $(BOOK_ROOT)
	$(ONE_BUILD) $(BIN)/jupyter-book build $(BOOK_ROOT) --warningiserror --keep-going $(BOOK_FLAGS)
	@echo "The book is at $(abspath $(BOOK_ROOT))/_build/html/index.html"
endif

# The PDF handout: the same notebooks (executed once, from the jupyter-cache) through XeLaTeX.
# LATEXMKOPTS=-xelatex (Sphinx's own advice for latexmk >= 4.52b): XeLaTeX writes only an .xdv on
# each of its three passes and xdvipdfmx makes the PDF once at the end, 13 % quicker than a PDF per pass.
TEX_PACKAGES := texlive-xetex texlive-latex-extra texlive-fonts-recommended fonts-freefont-otf latexmk
pdf: $(VENV)/.book-installed
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null || $(MAKE) --no-print-directory tex
	$(ONE_BUILD) $(BIN)/python tools/execute_book.py $(BOOK_ROOT)
	LATEXMKOPTS=-xelatex $(ONE_BUILD) $(BIN)/jupyter-book build $(BOOK_ROOT) --builder pdflatex --warningiserror --keep-going
	cp $(BOOK_ROOT)/_build/latex/l1-l2-regularization.pdf $(BOOK_ROOT)/_build/
	@echo "The handout is at $(abspath $(BOOK_ROOT))/_build/l1-l2-regularization.pdf"

# Installs TeX Live from Debian's packages when run as root; otherwise says what to install.
tex:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	else \
		echo "make pdf needs TeX Live. Install it with: sudo apt-get install $(TEX_PACKAGES)" >&2; exit 1; \
	fi

# Two stages, so that each notebook runs once per seed (two run again in the coursework tests):
# nbval first executes every chapter and stores each passing run in the build's execution cache
# (conftest.py); the rest of the suite (the build, the student edition, the PDF, the browser pages,
# the student notebooks' numbers) reuses those runs, and each chapter runs once more at seed 1,
# with its mutants forked from that run.
# Both stages always run; the target fails if either does. The second lists its 25 slowest tests
# (for the speed work) and hands out tests one at a time (--dist loadgroup, scheduled by
# conftest.py), except the files whose tests share a costly fixture (marked xdist_group), each kept
# on one worker: the many short tests (each chapter's seed-1 run with its mutants) then fill both
# workers instead of queueing behind one file.
test: $(VENV)/.dev-installed
	@$(BIN)/python -m pytest book; notebooks=$$?; \
	$(BIN)/python -m pytest tests --dist loadgroup --durations=25; rest=$$?; \
	echo "make test: notebooks (nbval) exit $$notebooks, other tests exit $$rest"; \
	[ $$notebooks -eq 0 ] && [ $$rest -eq 0 ]

# Claims must survive other seeds and die in a wrong world (tools/claims.py). `make test` runs
# every mutant at one other seed (seed 1), forked from one run of the chapter at that seed, which is
# also its other-seed check; these targets print the whole tables (the mutants at MUTANT_SEED).
SEEDS ?= 1 2 3 4 5
MUTANT_SEED ?= 0
robust: $(VENV)/.book-installed
	$(BIN)/python tools/claims.py seeds --seeds $(SEEDS)

mutants: $(VENV)/.book-installed
	$(BIN)/python tools/claims.py mutants --seed $(MUTANT_SEED)

bench: $(VENV)/.dev-installed
	$(BIN)/python tools/bench.py

student: $(VENV)/.dev-installed
	$(BIN)/python tools/coursework.py student

grade: $(VENV)/.dev-installed
	$(BIN)/python tools/coursework.py grade "$(SUBMISSIONS)" --timeout $(TIMEOUT) --memory $(MEMORY) \
		$(if $(ROSTER),--roster "$(ROSTER)") $(if $(CHAPTERS),--chapters $(CHAPTERS)) \
		$(if $(JOBS),--jobs $(JOBS)) $(if $(SHARD),--shard $(SHARD)) $(if $(OUTPUT),--output "$(OUTPUT)") \
		$(if $(filter 0,$(SANDBOX)),--no-sandbox) $(if $(filter 1,$(KEEP_EXECUTED)),--keep-executed)

merge: $(VENV)/.dev-installed
	$(BIN)/python tools/coursework.py merge $(RUNS) $(if $(OUTPUT),--output "$(OUTPUT)")

clean:
	rm -rf _build
