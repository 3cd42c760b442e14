"""A confined kernel for student code: bubblewrap (Debian's `bubblewrap` package) around ipykernel.

Inside, the student's code sees a read-only system (/usr, /etc, the Python it runs on), no
network (a network namespace of its own: the grader talks to it over Unix sockets), no other
process, none of the instructor's files and no other student's: the only writable places are its
own scratch folder (the notebook's folder), a private /tmp and a private /dev/shm. Its address
space is capped; run as root, the grader also drops the kernel to the user `nobody` with a cap on
processes (for a root process the kernel ignores that cap). nbgrader's per-cell timeout still
applies.
"""

import contextlib
import functools
import getpass
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from claims import BLAS_THREAD_VARIABLES

KERNEL_NAME = "l1l2-sandbox"
NOBODY = 65534
PROCESS_ALLOWANCE = 256          # processes a kernel may start (threads count) beyond what it has
SYSTEM_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32")
MATPLOTLIB_FOLDER = ".matplotlib"  # the kernel's MPLCONFIGDIR (config and font cache), in its scratch folder


def unavailable():
    """None if a sandboxed kernel can start here, else the reason in a few words."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here ({probe.stderr.strip()[:200]})"
    return None


def python_roots():
    """Folders the kernel's Python needs: the interpreter's installation and the virtual env."""
    roots = {Path(p) for p in (sys.prefix, sys.base_prefix)}
    roots |= {r.resolve() for r in roots}  # a venv reached through a link: both paths
    return sorted(str(r) for r in roots)


def command(workdir, runtime, memory_mb):
    """The kernel's launch command, as a shell line whose "$1" is the connection file."""
    as_root = os.geteuid() == 0
    args = ["bwrap", "--die-with-parent", "--new-session", "--clearenv",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp",
            # A /dev/shm the kernel's user may write: Python's semaphores live there, and without
            # them joblib (scikit-learn's n_jobs) silently runs its jobs in one process.
            "--perms", "1777", "--tmpfs", "/dev/shm"]
    for path in SYSTEM_PATHS:
        args += ["--ro-bind-try", path, path]
    mounts = [("--ro-bind", root) for root in python_roots()]
    # The kernel starts in its notebook's folder, under `workdir`; bwrap keeps that working directory.
    mounts += [("--bind", str(runtime)), ("--bind", str(workdir))]
    made = set()
    for kind, path in mounts:
        for parent in reversed(Path(path).parents[:-1]):  # bwrap would make them owner-only
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += [kind, path, path]
    args += ["--setenv", "HOME", "/tmp", "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "MPLCONFIGDIR", str(workdir / MATPLOTLIB_FOLDER),
             "--setenv", "MPLBACKEND", "module://matplotlib_inline.backend_inline"]
    for variable in BLAS_THREAD_VARIABLES:
        args += ["--setenv", variable, "1"]
    if as_root:  # root ignores RLIMIT_NPROC: run as nobody so that the process cap holds
        args += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        processes = PROCESS_ALLOWANCE
    else:
        owned = subprocess.run(["ps", "-u", getpass.getuser(), "-L", "--no-headers"], capture_output=True,
                               text=True).stdout.count("\n")
        processes = owned + PROCESS_ALLOWANCE
    args += ["prlimit", f"--as={memory_mb * 2**20}", f"--nproc={processes}", "--",
             sys.executable, "-m", "ipykernel_launcher", "-f"]
    # The connection file is written owner-only; the kernel (nobody, as root) must read it.
    return f'chmod 0644 "$1" && exec {shlex.join(args)} "$1"'


@functools.cache
def font_cache_files():
    """The files of this Python's matplotlib font cache, built if missing, or [] if that fails. Asked
    of a child Python, once per grading process: importing matplotlib here, before
    grading.warm_judge loads NumPy with one BLAS thread, would start NumPy's threads in the grader,
    and its judge would then start afresh instead of forking (grading.run_judge). The child runs
    isolated (-I) in the interpreter's own folder, so that no file where the grader was started (a
    submissions folder) can stand in for matplotlib or its matplotlibrc in it."""
    script = "import matplotlib, matplotlib.font_manager; print(matplotlib.get_cachedir())"
    try:
        found = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                               cwd=sys.prefix, timeout=120)
        folder = Path(found.stdout.strip().splitlines()[-1]) if found.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        folder = None
    return sorted(folder.glob("fontlist-*.json")) if folder else []


def copy_font_cache(folder):
    """Give the kernel matplotlib's font cache, in `folder`, its MPLCONFIGDIR: its HOME is an empty
    private /tmp, where matplotlib would rebuild the cache at every start (a third of a second for
    every notebook graded). Only a speed-up: whatever fails here leaves the kernel to build its
    own. It fills only a folder it has just made, so nothing in it can be a link planted by student
    code. The folder is the student's own, like the rest of its scratch folder: what one chapter's
    kernel writes there reaches only that student's later chapters."""
    try:
        folder.mkdir()  # never one that exists
        os.chmod(folder, 0o777)  # as root the kernel runs as nobody; matplotlib wants a folder it may write
    except OSError:
        return
    for cached in font_cache_files():
        partial = folder / f".{cached.name}.part"
        try:  # a whole copy or none: a kernel that cannot read the cache rebuilds it
            shutil.copy2(cached, partial)  # its modification time too (test_sandbox.py)
            os.chmod(partial, 0o644)  # readable by the kernel whatever the grader's umask
            if os.geteuid() == 0:  # the kernel runs as nobody: its own file, which a rebuild would rewrite
                os.chown(partial, NOBODY, NOBODY)
            os.replace(partial, folder / cached.name)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)


def install_kernel(course, memory_mb):
    """Write the sandbox kernelspec into `course`, an nbgrader course folder of one student.

    Returns the environment that makes Jupyter find it, and the kernel manager's settings: Unix
    sockets in the runtime folder (the kernel has no network) and a connection file it can see.
    The kernel may write in `autograded/`, where nbgrader puts the notebook it runs, and nowhere
    else outside its private /tmp."""
    runtime, workdir = course / "runtime", course / "autograded"
    for folder in (runtime, workdir):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o777)  # as root the kernel runs as nobody; the course folder is private (0700)
    copy_font_cache(workdir / MATPLOTLIB_FOLDER)
    spec = course / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = ["/bin/sh", "-c", command(workdir, runtime, memory_mb), "sh", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        # Interrupts travel as messages: a signal would reach bwrap, which does not pass it on.
        {"argv": argv, "display_name": "Sandboxed Python 3", "language": "python",
         "interrupt_mode": "message"}, indent=1))
    environment = {"JUPYTER_PATH": str(course / "jupyter"), "JUPYTER_RUNTIME_DIR": str(runtime)}
    manager = {"transport": "ipc", "ip": str(runtime / "kernel"),
               "connection_file": str(runtime / "connection.json")}  # one kernel at a time per course
    return environment, manager
