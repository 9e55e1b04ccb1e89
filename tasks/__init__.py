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

from invoke import Collection

from tasks.automation import automation
from tasks.catalog import articles, playbooks
from tasks.demo import demo
from tasks.emulator import armsim
from tasks.remediation import apply, diagnose, remediate, resume, sweep
from tasks.runs import runs

# `… | head` closes our stdout early: end quietly, as Unix tools do, instead of with a BrokenPipeError traceback
if hasattr(signal, "SIGPIPE"):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)

ns = Collection(diagnose, remediate, apply, resume, sweep, demo)
for sub in (armsim, articles, playbooks, runs, automation):
    ns.add_collection(sub)
