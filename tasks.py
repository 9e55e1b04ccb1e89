"""Command line of azure-rca-runbooks (invoke). Thin: parse arguments, call ``runbooks``, render, exit.

Run ``invoke --list`` for the tasks; ``invoke --help TASK`` for one task's options.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from invoke import Collection, Context, Exit, task

from runbooks.errors import RunbookError

# azure-identity logs each credential it tried as a warning; the failure reaches the user as one error line.
logging.getLogger("azure.identity").addHandler(logging.NullHandler())
logging.getLogger("azure.identity").propagate = False


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the toolkit's expected errors into one line on stderr and a non-zero exit."""
    try:
        yield
    except RunbookError as e:
        raise Exit(f"error: {e}", code=2) from e


# --- articles & playbooks -------------------------------------------------------------------------
# (issue 3: articles.list, articles.show, articles.coverage, playbooks.validate)
# Imports are local so this section stays self-contained (other sections are edited concurrently).

_DIR_HELP = "articles folder (default: env RUNBOOKS_ARTICLES, else ../shared/articles next to the repo)"


def _corpus(dir_: str) -> list:  # list[Article]; the import is local
    """Parse the articles folder leniently (a broken article is shown with its warnings, not fatal)."""
    from pathlib import Path

    from runbooks.articles import default_corpus_dir, load_corpus

    return load_corpus(Path(dir_) if dir_ else default_corpus_dir())


def _set_values(pairs: list[str]) -> dict[str, str]:
    """``["vmname=web01", ...]`` → ``{"vmname": "web01"}``; UsageError on a pair without ``=``."""
    from runbooks.errors import UsageError

    values: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--set {pair!r}: expected NAME=VALUE, e.g. --set vmname=web01")
        values[name.strip()] = value
    return values


@task(help={"scenario": "only this diagnosticScenario (case-insensitive)", "json": "print JSON",
            "dir": _DIR_HELP})
def articles_list(c: Context, scenario: str = "", json_: bool = False, dir_: str = "") -> None:
    """List the corpus's articles: articleId, diagnosticScenario, playbook, title."""
    import json

    from runbooks.playbook import load_playbooks, playbook_for_article

    with user_errors():
        playbooks = load_playbooks()
        rows = [
            {"articleId": a.article_id, "diagnosticScenario": a.diagnostic_scenario,
             "playbook": (pb.id if (pb := playbook_for_article(a.article_id, playbooks)) else None),
             "title": a.title, "file": a.path, "warnings": [str(w) for w in a.warnings]}
            for a in _corpus(dir_)
            if not scenario or a.diagnostic_scenario.lower() == scenario.lower()
        ]
        if json_:
            print(json.dumps(rows, indent=2))
            return
        width = max((len(r["articleId"]) for r in rows), default=0)
        for r in rows:
            playbook = r["playbook"] or "-"
            print(f"{r['articleId']:<{width}}  {r['diagnosticScenario']:<20}  {playbook:<16}  {r['title']}")
        print(f"{len(rows)} articles")


@task(
    iterable=["set_"],
    help={"id": "articleId (exact; case-insensitive if unambiguous)",
          "set": "placeholder value NAME=VALUE (repeatable), e.g. --set vmname=web01", "dir": _DIR_HELP},
)
def articles_show(c: Context, id_: str, set_: list[str] | None = None, dir_: str = "") -> None:
    """Show one article as the portal would, placeholders filled from --set (else their defaults)."""
    from runbooks.articles import find_article, render_article
    from runbooks.errors import UsageError
    from runbooks.playbook import load_playbooks, playbook_for_article

    with user_errors():
        values = _set_values(set_ or [])
        article = find_article(_corpus(dir_), id_)
        known = {p.key for p in article.placeholders}
        unknown = [k for k in values if k.lower() not in known]
        if unknown:
            names = ", ".join(article.placeholder_defaults) or "none"
            raise UsageError(f"--set {unknown[0]}: no such placeholder in {article.article_id}; has {names}")
        pb = playbook_for_article(article.article_id, load_playbooks())
        print(f"{article.article_id}  ({article.path})")
        print(f"scenario: {article.diagnostic_scenario}")
        print(f"playbook: {pb.id + ' (' + ', '.join(s.id for s in pb.scenarios) + ')' if pb else 'none'}")
        for w in article.warnings:
            print(f"warning: {w}")
        print()
        print(render_article(article, values), end="")


@task(help={"json": "print JSON", "dir": _DIR_HELP})
def articles_coverage(c: Context, json_: bool = False, dir_: str = "") -> None:
    """Which corpus articles have a playbook, grouped by diagnosticScenario, with totals."""
    import json

    from runbooks.playbook import load_playbooks, playbook_for_article

    with user_errors():
        playbooks = load_playbooks()
        groups: dict[str, dict[str, list[str]]] = {}
        for a in _corpus(dir_):
            g = groups.setdefault(a.diagnostic_scenario or "(none)", {"covered": [], "uncovered": []})
            has_playbook = playbook_for_article(a.article_id, playbooks) is not None
            g["covered" if has_playbook else "uncovered"].append(a.article_id)
        total = sum(len(g["covered"]) + len(g["uncovered"]) for g in groups.values())
        covered = sum(len(g["covered"]) for g in groups.values())
        if json_:
            print(json.dumps({"total": total, "covered": covered, "scenarios": groups}, indent=2))
            return
        for name, g in sorted(groups.items()):
            n = len(g["covered"]) + len(g["uncovered"])
            print(f"{name:<40} {len(g['covered']):>3}/{n:<3}")
            for article_id in g["covered"]:
                print(f"    {article_id}")
        print(f"{'total':<40} {covered:>3}/{total:<3} articles have a playbook")


@task(help={"dir": "playbooks folder (default: env RUNBOOKS_PLAYBOOKS, else the repo's playbooks/)",
            "corpus": "articles folder to check articleIds against (default: as for articles.list)"})
def playbooks_validate(c: Context, dir_: str = "", corpus: str = "") -> None:
    """Lint the playbooks (schema, steps and parameters, signal ids, articleIds); exit 1 on errors."""
    from runbooks.articles import default_corpus_dir
    from runbooks.errors import UsageError
    from runbooks.playbook import default_playbooks_dir, lint

    with user_errors():
        folder = dir_ or str(default_playbooks_dir())
        corpus_dir: str | None = corpus or None
        if corpus_dir is None:
            try:
                corpus_dir = str(default_corpus_dir())
            except UsageError:
                print("note: no articles folder; articleIds not checked against the corpus")
        issues = lint(folder, corpus_dir)
        for issue in issues:
            print(f"{issue.severity}: {issue}")
        errors = sum(1 for i in issues if i.severity == "error")
        if errors:
            raise Exit(f"{errors} error(s) in {folder}", code=1)
        print(f"{folder}: playbooks OK")


# --- remediation ------------------------------------------------------------------------------------

CONNECTION_HELP = {
    "endpoint": "ARM endpoint (default: $RUNBOOKS_ARM_ENDPOINT, else public Azure)",
    "ca_bundle": "CA bundle to trust for the endpoint (default: $RUNBOOKS_CA_BUNDLE)",
    "subscription": "subscription id (default: $AZURE_SUBSCRIPTION_ID)",
}
STORE_HELP = {"store": "where run journals and locks live: a directory, or a blob container "
              "https://ACCOUNT.blob.core.windows.net/CONTAINER (default: $RUNBOOKS_STORE_URL + "
              "$RUNBOOKS_STORE_CONTAINER, else $RUNBOOKS_HOME)"}


def _azure(endpoint: str, ca_bundle: str, subscription: str):  # -> runbooks.azure.Azure
    from runbooks.azure import Azure, Connection

    return Azure(Connection.from_env(endpoint=endpoint or None, ca_bundle=ca_bundle or None,
                                     subscription=subscription or None))


def _hooks(yes: bool, dry_run: bool = False):  # -> runbooks.apply.Hooks
    """Confirm mode asks on the terminal; without one (and without --yes) it refuses before any write."""
    import sys

    from runbooks.apply import Hooks
    from runbooks.errors import ConfirmationRequired

    if not yes and not dry_run and not sys.stdin.isatty():
        raise ConfirmationRequired("confirm mode needs a terminal to ask before destructive steps: pass --yes "
                                   "for automation, or --dry-run to see the plan")

    def confirm(question: str) -> bool:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    return Hooks(confirm=confirm, progress=lambda line: print(line, flush=True))


def _print_json(data: object) -> None:
    import json

    print(json.dumps(data, indent=2, default=str))


@task(help={"vm": "RESOURCE_GROUP/NAME or a full VM resource id", "json": "print the diagnosis as JSON",
            "articles": "a local SelfHelp corpus: also render the matched article with its placeholders filled",
            **CONNECTION_HELP})
def diagnose(c: Context, vm: str, json: bool = False, articles: str = "", endpoint: str = "", ca_bundle: str = "",
             subscription: str = "") -> None:
    """Read-only: what is wrong with the VM, the evidence, the playbook and the recommended scenario."""
    with user_errors():
        from runbooks.observe import VmRef
        from runbooks.remediate import run_diagnosis
        from runbooks.render import diagnosis_json, diagnosis_text, matched_articles

        ref = VmRef.parse(vm)
        diag = run_diagnosis(_azure(endpoint, ca_bundle, subscription), ref)
        rendered = matched_articles(diag, articles) if articles else []
        if json:
            _print_json({**diagnosis_json(diag), "articles": rendered})
            return
        print(diagnosis_text(diag))
        for text in rendered:
            print("\n" + text["rendered"])


@task(help={"vm": "RESOURCE_GROUP/NAME or a full VM resource id",
            "scenario": "from-image or from-os-disk (default: the recommended one)",
            "dry_run": "print the full plan and stop: zero writes", "yes": "do not ask (for automation)",
            "plan_out": "also save the plan to this file (apply it later with: invoke apply --plan FILE)",
            "json": "print the plan as JSON", "admin_secret": "where from-image reads the admin password: "
            "env:NAME (default env:RUNBOOKS_ADMIN_PASSWORD) or a Key Vault secret URL "
            "https://VAULT.vault.azure.net/secrets/NAME[/VERSION], read with the same Azure credential (on "
            "armsim: ENDPOINT/keyvault/VAULT/secrets/NAME); checked before any write, never printed or stored",
            "verify_timeout": "seconds to wait for the VM agent to be Ready (default: the playbook's)",
            **CONNECTION_HELP, **STORE_HELP})
def remediate(c: Context, vm: str, scenario: str = "", dry_run: bool = False, yes: bool = False, plan_out: str = "",
              json: bool = False, admin_secret: str = "", verify_timeout: float = 0.0, endpoint: str = "",
              ca_bundle: str = "", subscription: str = "", store: str = "") -> None:
    """Recreate a generalized VM safely: plan, show every step, ask before destructive ones, apply, verify.

    Re-running it after an interruption resumes the unfinished run from its journal.
    """
    with user_errors():
        from pathlib import Path

        from runbooks.azure import check_secrets, parse_secret_ref
        from runbooks.observe import VmRef
        from runbooks.remediate import pending_run, plan_remediation, resume
        from runbooks.remediate import remediate as run_remediation
        from runbooks.render import outcome_text, plan_text

        ref = VmRef.parse(vm)
        if admin_secret:
            parse_secret_ref(admin_secret)  # bad syntax is a usage error whichever scenario runs
        hooks = _hooks(yes, dry_run)
        az = _azure(endpoint, ca_bundle, subscription)
        pending = None if dry_run else pending_run(az, ref, store=store)
        if pending is not None:
            print(f"An unfinished run {pending.run_id} exists for {ref}: resuming it.")
            check_secrets(az, [call for step in pending.plan().steps for call in step.calls])
            print(outcome_text(resume(az, ref, hooks, yes=yes, store=store)))
            return
        _, plan = plan_remediation(az, ref, scenario or None, admin_secret=admin_secret or None,
                                   verify_timeout=verify_timeout or None)
        if plan_out:
            Path(plan_out).write_text(plan.dumps())
        if json:
            _print_json(plan.to_dict())
        else:
            print(plan_text(plan))
        if dry_run:
            print(f"Dry run: nothing was changed ({az.counter.writes} writes).")
            return
        check_secrets(az, [call for step in plan.steps for call in step.calls])  # fail now, before any write
        print(outcome_text(run_remediation(az, plan, hooks, yes=yes, store=store)))


@task(help={"plan": "a plan file written by remediate --plan-out", "yes": "do not ask (for automation)",
            **CONNECTION_HELP, **STORE_HELP})
def apply(c: Context, plan: str, yes: bool = False, endpoint: str = "", ca_bundle: str = "",
          subscription: str = "", store: str = "") -> None:
    """Apply a saved plan exactly; refuses if the VM changed since the plan was made."""
    with user_errors():
        from pathlib import Path

        from runbooks.remediate import apply_saved, load_plan_file
        from runbooks.render import outcome_text

        saved = load_plan_file(Path(plan))
        hooks = _hooks(yes)
        print(outcome_text(apply_saved(_azure(endpoint, ca_bundle, subscription), saved, hooks, yes=yes,
                                       store=store)))


@task(help={"vm": "RESOURCE_GROUP/NAME or a full VM resource id", "yes": "do not ask (for automation)",
            **CONNECTION_HELP, **STORE_HELP})
def resume(c: Context, vm: str, yes: bool = False, endpoint: str = "", ca_bundle: str = "",
           subscription: str = "", store: str = "") -> None:
    """Continue an interrupted remediation of this VM from its journal."""
    with user_errors():
        from runbooks.observe import VmRef
        from runbooks.remediate import resume as run_resume
        from runbooks.render import outcome_text

        ref = VmRef.parse(vm)
        hooks = _hooks(yes)
        print(outcome_text(run_resume(_azure(endpoint, ca_bundle, subscription), ref, hooks, yes=yes, store=store)))


@task(help={"resource_group": "only VMs of this resource group (the VM list is still read subscription-wide)",
            "remediate": "remediate every VM found, as remediate --yes does (default: report only, read-only)",
            "diagnose": "report mode: also run the full diagnosis of each VM found (about 8 reads per VM)",
            "max_concurrency": "VMs worked on at a time, 1-10 (default 4)",
            "max_errors": "start no new remediation once this many have failed (default 1)",
            "max_vms": "refuse, before any change, to remediate more VMs than this (default 10)",
            "admin_secret": "as for remediate: where from-image reads the admin password (env:NAME or a Key "
            "Vault secret URL)",
            "verify_timeout": "as for remediate: seconds to wait for the VM agent to be Ready",
            "prefer": "from-image or from-os-disk: the scenario for VMs that both fit (ARM cannot tell whether "
            "the guest was sysprepped); without it such VMs are skipped",
            "json": "print the report as JSON", **CONNECTION_HELP, **STORE_HELP})
def sweep(c: Context, resource_group: str = "", remediate: bool = False, diagnose: bool = False,
          max_concurrency: str = "4", max_errors: str = "1", max_vms: str = "10", admin_secret: str = "",
          verify_timeout: str = "", prefer: str = "", json: bool = False, endpoint: str = "", ca_bundle: str = "",
          subscription: str = "", store: str = "") -> None:
    """Find every VM in a state a playbook covers (paged VM list, not one read per VM); optionally remediate them.

    Exits 1 when a remediation failed or remediations stopped early (--max-errors, Ctrl-C).
    """
    with user_errors():
        from runbooks.sweep import check_options, check_prefer, console_progress, parse_number, sweep_text
        from runbooks.sweep import sweep as run_sweep

        counts = {"max_concurrency": parse_number("max-concurrency", max_concurrency, int),
                  "max_errors": parse_number("max-errors", max_errors, int),
                  "max_vms": parse_number("max-vms", max_vms, int)}
        timeout = parse_number("verify-timeout", verify_timeout, float) if verify_timeout else None
        check_options(None, resource_group or None, **counts)  # the subscription id: once it is resolved
        az = _azure(endpoint, ca_bundle, subscription)
        with console_progress() as show:
            report = run_sweep(az, resource_group=resource_group or None, remediate=remediate, diagnose=diagnose,
                               admin_secret=admin_secret or None, verify_timeout=timeout,
                               prefer=check_prefer(prefer), store=store or None,
                               on_event=show, **counts)
        if json:
            _print_json(report.to_dict())
        else:
            print(sweep_text(report))
        if not report.ok:
            raise Exit(code=1)


@task(help={"latency_scale": "how fast armsim's clock runs for the demo (1.0 = Azure's real durations)"})
def demo(c: Context, latency_scale: float = 0.02) -> None:
    """Start armsim, seed both generalized-VM scenarios, then diagnose, dry-run, remediate and verify each."""
    with user_errors():
        from runbooks.demo import run_demo

        run_demo(latency_scale)


# --- azure automation -----------------------------------------------------------------------------

_WHEELS_HELP = "the folder `automation.package` built (default: dist/automation)"


def _deploy_settings(location: str, wheels_url: str, runtime_environment: str, identity: str, schedule: str,
                     sweep_parameter: str):  # -> runbooks.automation.deploy.Settings
    import json
    import os

    from runbooks.automation.deploy import ScheduleSpec, Settings
    from runbooks.automation.entry import SweepParameters, parse_parameter
    from runbooks.errors import UsageError

    if not location:
        raise UsageError("--location is required (the Automation account's region, e.g. eastus)")
    if not wheels_url.startswith(("https://", "http://")):
        raise UsageError("--wheels-url must be the http(s) URL the wheel folder is served from (e.g. a blob "
                         "container); the service downloads every package from there")
    sweep = parse_parameter([sweep_parameter], SweepParameters) if sweep_parameter else None
    return Settings(location=location, wheels_url=wheels_url, runtime_environment=runtime_environment,
                    identity=identity, schedule=ScheduleSpec.parse(schedule) if schedule else None,
                    sweep_parameters=json.loads(sweep.model_dump_json(exclude_defaults=True)) if sweep else {},
                    wheels_sas=os.environ.get("RUNBOOKS_WHEELS_SAS") or None)


@task(help={"out": "folder to write the wheels, runbook scripts and manifest.json into (default: dist/automation)",
            "python_version": "the sandbox's Python (default 3.10, the current Automation runtime)"})
def automation_package(c: Context, out: str = "dist/automation", python_version: str = "3.10") -> None:
    """Build the complete wheel set for the Automation sandbox (Linux x86_64, CPython 3.10) and report its size."""
    with user_errors():
        from pathlib import Path

        from runbooks.automation.package import build

        ws = build(Path(out), python_version=python_version, progress=lambda line: print(line, flush=True))
        for w in ws.wheels:
            print(f"  {w.file}  {w.size / 1024:,.0f} KiB")
        print(f"{len(ws.wheels)} wheels, {len(ws.scripts)} runbook scripts, {ws.size / 2**20:.1f} MiB "
              f"(limit 100 MiB) → {out}/manifest.json")


_DEPLOY_HELP = {
    "resource_group": "resource group of the Automation account", "account": "Automation account name",
    "location": "the account's region (required)",
    "wheels_url": "http(s) URL where the --wheels folder is served (SAS token, if any: env RUNBOOKS_WHEELS_SAS)",
    "wheels": _WHEELS_HELP, "runtime_environment": "runtime environment name (default rca-runbooks-py310)",
    "identity": "SystemAssigned (default) or a user-assigned identity's resource id",
    "schedule": "schedule the sweep: FREQUENCY[/INTERVAL][@HH:MM] UTC, e.g. day@02:00, hour/6",
    "sweep_parameter": "the scheduled sweep's JSON parameter, e.g. '{\"remediate\": false, \"max_vms\": 10}'",
}


@task(help={**_DEPLOY_HELP, **CONNECTION_HELP})
def automation_deploy(c: Context, resource_group: str, account: str, wheels_url: str, location: str = "",
                      wheels: str = "dist/automation", runtime_environment: str = "rca-runbooks-py310",
                      identity: str = "SystemAssigned", schedule: str = "", sweep_parameter: str = "",
                      endpoint: str = "", ca_bundle: str = "", subscription: str = "") -> None:
    """Deploy (idempotently) the runbooks to an Automation account: identity, runtime, packages, publish, schedule."""
    with user_errors():
        from pathlib import Path

        from runbooks.automation.deploy import deploy
        from runbooks.automation.package import WheelSet

        settings = _deploy_settings(location, wheels_url, runtime_environment, identity, schedule, sweep_parameter)
        wheel_set = WheelSet.load(Path(wheels))
        az = _azure(endpoint, ca_bundle, subscription)
        report = deploy(az.automation(), resource_group, account, wheel_set, settings,
                        progress=lambda line: print(line, flush=True))
        print(f"Deployed to {resource_group}/{account}: {report.writes} change(s).")
        if report.principal_id:
            print(f"The account's identity is principal {report.principal_id}: assign it the role in "
                  "runbooks/automation/roles/ (remediator.json, or reader.json for report-only sweeps).")


@task(help={**_DEPLOY_HELP, "out": "write the template here (default: stdout)",
            "account": "default Automation account name in the template"})
def automation_template(c: Context, account: str, wheels_url: str, location: str = "", out: str = "",
                        wheels: str = "dist/automation", runtime_environment: str = "rca-runbooks-py310",
                        identity: str = "SystemAssigned", schedule: str = "", sweep_parameter: str = "",
                        resource_group: str = "") -> None:
    """Export the same deployment as an ARM template (JSON) for IaC pipelines."""
    with user_errors():
        import json
        from pathlib import Path

        from runbooks.automation.package import WheelSet
        from runbooks.automation.template import arm_template

        settings = _deploy_settings(location or "[resourceGroup().location]", wheels_url, runtime_environment,
                                    identity, schedule, sweep_parameter)
        text = json.dumps(arm_template(WheelSet.load(Path(wheels)), settings, account), indent=2) + "\n"
        if out:
            Path(out).write_text(text)
            print(f"wrote {out}")
        else:
            print(text, end="")


@task(help={"resource_group": "resource group of the Automation account", "account": "Automation account name",
            "runbook": "Sweep-GeneralizedVMs or Remediate-GeneralizedVM",
            "parameter": "the runbook's JSON parameter, e.g. '{\"vm\": \"rg/name\"}'",
            "timeout": "seconds to wait for the job to end (default 3600)", **CONNECTION_HELP})
def automation_start(c: Context, resource_group: str, account: str, runbook: str, parameter: str = "{}",
                     timeout: float = 3600.0, endpoint: str = "", ca_bundle: str = "", subscription: str = "") -> None:
    """Start a job of a published runbook, follow it to the end and print its streams; exit 1 if it failed."""
    with user_errors():
        from runbooks.automation.jobs import follow_job

        az = _azure(endpoint, ca_bundle, subscription)
        result = follow_job(az.automation(), resource_group, account, runbook, parameter, timeout=timeout,
                         progress=lambda line: print(line, flush=True))
        if result.status != "Completed":
            raise Exit(f"error: job {result.job_id} ended {result.status}", code=1)


# --- run store: the audit trail ---------------------------------------------------------------------
# (issue 6: runs.list, runs.show; the store is chosen as for remediate: --store, else RUNBOOKS_STORE_*)


@task(help={"json": "print JSON", **STORE_HELP})
def runs_list(c: Context, json_: bool = False, store: str = "") -> None:
    """Past and unfinished runs, newest first: status, when, who, steps and calls done, VM and scenario."""
    with user_errors():
        from runbooks.journal import store_from_env
        from runbooks.runs import list_runs, runs_table

        rows = list_runs(store_from_env(store))
        if json_:
            _print_json(rows)
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
            _print_json(record)
            return
        print(run_text(record))


# --- armsim ---------------------------------------------------------------------------------------


@task(help={"port": "port to listen on (0 = any free port)", "scenario": "scenario to seed at start"})
def armsim_serve(c: Context, port: int = 0, scenario: str = "", latency_scale: float = 1.0) -> None:
    """Run armsim, the local HTTPS emulator of Azure Resource Manager, until Ctrl-C."""
    args = ["python", "-m", "armsim", "serve", "--port", str(port), "--latency-scale", str(latency_scale)]
    if scenario:
        args += ["--scenario", scenario]
    c.run(" ".join(args), pty=False)


ns = Collection(diagnose, remediate, apply, resume, sweep, demo)
ns.add_collection(Collection("armsim", serve=armsim_serve))
ns.add_collection(Collection("articles", list=articles_list, show=articles_show, coverage=articles_coverage))
ns.add_collection(Collection("playbooks", validate=playbooks_validate))
ns.add_collection(Collection("runs", list=runs_list, show=runs_show))
ns.add_collection(Collection("automation", package=automation_package, deploy=automation_deploy,
                             template=automation_template, start=automation_start))
