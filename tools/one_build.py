"""Runs one command while no other build of the same book runs: `make book`, its student edition
and `make pdf` take BOOK_ROOT/_build/.build.lock, so two of them started at once (two terminals,
or two test workers) wait for each other instead of writing the same files (Sphinx's search
index, the execution cache) at the same time.

Usage: python tools/one_build.py BOOK_ROOT COMMAND [ARG ...]
"""

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root, command = Path(argv[0]), argv[1:]
    if not (root / "_config.yml").is_file():
        print(f"one_build.py: not a book's root (no _config.yml): {root}", file=sys.stderr)
        return 2
    (root / "_build").mkdir(exist_ok=True)
    with open(root / "_build" / ".build.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            print(f"one_build.py: waiting for another build of this book ({lock.read().strip()})",
                  file=sys.stderr, flush=True)
            started = time.monotonic()
            fcntl.flock(lock, fcntl.LOCK_EX)
            print(f"one_build.py: waited {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}: {' '.join(command)}\n")
        lock.flush()
        try:
            return subprocess.run(command).returncode
        except FileNotFoundError:
            print(f"one_build.py: no such command: {command[0]}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
