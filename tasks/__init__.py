"""Command line of azure-rca-runbooks (invoke): thin tasks that parse options, call ``runbooks`` and render.

Run ``invoke --list`` for the tasks; ``invoke --help TASK`` for one task's options. The collections:

    diagnose, remediate, apply, resume, sweep, demo      tasks.remediation, tasks.demo
    articles.*, playbooks.*                              tasks.catalog
    runs.*                                               tasks.runs
    automation.*                                         tasks.automation
    armsim.serve                                         tasks.emulator
"""

from __future__ import annotations

from invoke import Collection

from tasks.automation import automation
from tasks.catalog import articles, playbooks
from tasks.demo import demo
from tasks.emulator import armsim
from tasks.remediation import apply, diagnose, remediate, resume, sweep
from tasks.runs import runs

ns = Collection(diagnose, remediate, apply, resume, sweep, demo)
for sub in (armsim, articles, playbooks, runs, automation):
    ns.add_collection(sub)
