"""Tasks on the run store: the audit trail of past runs (runs.list, runs.show) and closing a run (runs.abandon).
The store is chosen as for remediate: --store, else RUNBOOKS_STORE_*, else RUNBOOKS_HOME."""

from __future__ import annotations

from invoke import Collection, Context

from tasks._common import STORE_HELP, print_json, task, user_errors


@task(help={"json": "print JSON", **STORE_HELP})
def runs_list(c: Context, json_: bool = False, store: str = "") -> None:
    """Past and unfinished runs, newest first: status, when, who, steps and calls done, VM and scenario."""
    with user_errors(json_):
        from runbooks.journal import store_from_env
        from runbooks.runs import list_runs, runs_table

        rows = list_runs(store_from_env(store))
        if json_:
            print_json(rows)
            return
        print(runs_table(rows))


@task(help={"id": "the run id, or a unique prefix of it (as runs.list shows it)",
            "json": "print JSON (every journal event included)",
            **STORE_HELP})
def runs_show(c: Context, id_: str, json_: bool = False, store: str = "") -> None:
    """One run's audit trail: the plan's steps and calls with what happened to each, who, when, status."""
    with user_errors(json_):
        from runbooks.journal import store_from_env
        from runbooks.runs import run_text, show_run

        runs_store = store_from_env(store)
        record = show_run(runs_store, runs_store.resolve(id_))
        if json_:
            print_json(record)
            return
        print(run_text(record))




@task(help={"id": "the run id, or a unique prefix of it", "reason": "why, for the audit trail", **STORE_HELP})
def runs_abandon(c: Context, id_: str, reason: str = "", store: str = "") -> None:
    """Close an unfinished or failed run so the VM's next remediate plans afresh (nothing in Azure changes)."""
    with user_errors():
        from runbooks.journal import store_from_env
        from runbooks.runs import abandon_run

        runs_store = store_from_env(store)
        row = abandon_run(runs_store, runs_store.resolve(id_), reason=reason)
        print(f"Run {row['run_id']} of {row['vm']} is abandoned; the next remediate plans afresh. What it made "
              f"(snapshots) is kept: invoke runs.show {row['run_id']}")


@task(help={"id": "the run id, or a unique prefix of it",
            "dry_run": "show what would be undone and stop: zero writes",
            "yes": "do not ask (for automation)", "endpoint": "ARM endpoint (default: $RUNBOOKS_ARM_ENDPOINT)",
            "ca_bundle": "CA bundle for the endpoint (default: $RUNBOOKS_CA_BUNDLE)",
            "subscription": "subscription id (default: $AZURE_SUBSCRIPTION_ID)", **STORE_HELP})
def runs_rollback(c: Context, id_: str, dry_run: bool = False, yes: bool = False, endpoint: str = "",
                  ca_bundle: str = "", subscription: str = "", store: str = "") -> None:
    """Undo a run as far as Azure allows (a resize back, a property back, a power state back) and say plainly
    what cannot be undone (a deleted VM's identity, a host move)."""
    with user_errors():
        from runbooks.remediate import open_store, rollback_run
        from runbooks.render import outcome_text, plan_text
        from tasks._common import azure, hooks

        run_hooks = hooks(yes, dry_run)
        az = azure(endpoint, ca_bundle, subscription)
        run_id = open_store(az, store).resolve(id_)
        _, outcome = rollback_run(az, run_id, run_hooks, yes=yes, dry_run=dry_run, store=store,
                                  show_plan=lambda p: print(plan_text(p)))
        if outcome is not None:
            print(outcome_text(outcome))
        elif dry_run:
            print(f"Dry run: nothing was changed ({az.counter.writes} writes).")


runs = Collection("runs", list=runs_list, show=runs_show, abandon=runs_abandon, rollback=runs_rollback)
