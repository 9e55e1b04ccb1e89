"""Command line of azure-rca-runbooks (invoke): thin tasks that parse options, call ``runbooks`` and render.

Run ``invoke --list`` (from the repository root) or ``rca-runbooks --list`` (anywhere, once installed) for the
tasks; ``invoke --help TASK`` for one task's options. The collections:

    diagnose, remediate, apply, resume, sweep, demo      tasks.remediation, tasks.demo
    articles.*, playbooks.*                              tasks.catalog
    runs.*                                               tasks.runs
    automation.*                                         tasks.automation
    armsim.serve                                         tasks.emulator
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from invoke import Collection

from tasks.automation import automation
from tasks.catalog import articles, playbooks
from tasks.demo import demo
from tasks.emulator import armsim
from tasks.remediation import apply, diagnose, remediate, resume, sweep
from tasks.runs import runs


def quiet_broken_pipe() -> None:
    """`… | head` closes our stdout early: end quietly, as Unix tools do, instead of with a BrokenPipeError
    traceback; SIGTERM ends a run the way Ctrl-C does (its always-steps, a lock put back, still run). Only for
    the command-line process: a program importing the tasks keeps its own handling."""
    from runbooks.errors import stop_on_sigterm

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    stop_on_sigterm()


if Path(sys.argv[0]).name in ("invoke", "inv"):  # the invoke binary imports this collection, then runs it
    quiet_broken_pipe()

ns = Collection(diagnose, remediate, apply, resume, sweep, demo)
for sub in (armsim, articles, playbooks, runs, automation):
    ns.add_collection(sub)
