"""Tasks on the run store: the audit trail of past runs (runs.list, runs.show) and closing a run (runs.abandon).
The store is chosen as for remediate: --store, else RUNBOOKS_STORE_*, else RUNBOOKS_HOME."""

from __future__ import annotations

from invoke import Collection, Context, task

from tasks._common import STORE_HELP, print_json, user_errors


@task(help={"json": "print JSON", **STORE_HELP})
def runs_list(c: Context, json_: bool = False, store: str = "") -> None:
    """Past and unfinished runs, newest first: status, when, who, steps and calls done, VM and scenario."""
    with user_errors():
        from runbooks.journal import store_from_env
        from runbooks.runs import list_runs, runs_table

        rows = list_runs(store_from_env(store))
        if json_:
            print_json(rows)
            return
        print(runs_table(rows))


@task(help={"id": "the run id (as runs.list shows it)", "json": "print JSON (every journal event included)",
            **STORE_HELP})
def runs_show(c: Context, id_: str, json_: bool = False, store: str = "") -> None:
    """One run's audit trail: the plan's steps and calls with what happened to each, who, when, status."""
    with user_errors():
        from runbooks.journal import check_run_id, store_from_env
        from runbooks.runs import run_text, show_run

        record = show_run(store_from_env(store), check_run_id(id_))
        if json_:
            print_json(record)
            return
        print(run_text(record))




@task(help={"id": "the run id (as runs.list shows it)", "reason": "why, for the audit trail", **STORE_HELP})
def runs_abandon(c: Context, id_: str, reason: str = "", store: str = "") -> None:
    """Close an unfinished or failed run so the VM's next remediate plans afresh (nothing in Azure changes)."""
    with user_errors():
        from runbooks.journal import check_run_id, store_from_env
        from runbooks.runs import abandon_run

        row = abandon_run(store_from_env(store), check_run_id(id_), reason=reason)
        print(f"Run {row['run_id']} of {row['vm']} is abandoned; the next remediate plans afresh. What it made "
              f"(snapshots) is kept: invoke runs.show {row['run_id']}")


runs = Collection("runs", list=runs_list, show=runs_show, abandon=runs_abandon)
