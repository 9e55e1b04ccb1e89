"""The remediation tasks: diagnose, remediate, apply a saved plan, resume, sweep. Each parses its options,
calls one function of ``runbooks`` and renders the result."""

from __future__ import annotations

from invoke import Context, Exit

from tasks._common import CONNECTION_HELP, STORE_HELP, azure, hooks, print_json, task, user_errors

VM_HELP = "RESOURCE_GROUP/NAME or a full VM resource id"


@task(help={"vm": VM_HELP + " (optional with --article, --error or --code)", "json": "print the diagnosis as JSON",
            "playbook": "diagnose against this playbook (default: the one whose detection holds)",
            "articles": "a local SelfHelp corpus: also render the article the evidence picks, placeholders filled",
            "article": "an RCA articleId (as the portal names it): show the runbook that serves it and render it",
            "error": "an error ARM returned, pasted (JSON, '(Code) message' or plain text): pick the playbook",
            "code": "an ARM error code (e.g. ScopeLocked): pick the playbook", **CONNECTION_HELP})
def diagnose(c: Context, vm: str = "", json: bool = False, playbook: str = "", articles: str = "", article: str = "",
             error: str = "", code: str = "", endpoint: str = "", ca_bundle: str = "", subscription: str = "") -> None:
    """Read-only: what is wrong with the VM, the evidence, the playbook that fits and the recommended scenario.

    From what an operator has in hand: --article ID shows the runbook of an RCA article; --error TEXT or --code
    CODE picks the playbook from an ARM error, and with --vm checks whether the VM's own evidence agrees.
    """
    with user_errors(json):
        from runbooks.errors import UsageError
        from runbooks.lookup import parse_error, playbooks_for_error, runbook_for_article
        from runbooks.observe import VmRef
        from runbooks.playbook import load_playbooks
        from runbooks.remediate import run_diagnosis
        from runbooks.render import diagnosis_json, diagnosis_text, matched_articles, runbook_text
        from runbooks.text import fit_lines

        if not vm and not (article or error or code):
            raise UsageError("give --vm RG/NAME, or --article ID, or --error TEXT / --code CODE")
        if article and (error or code):
            raise UsageError("give --article or --error/--code, not both")
        ref = VmRef.parse(vm) if vm else None
        pool = load_playbooks()
        out: dict[str, object] = {}
        lines: list[str] = []
        if article:
            pb = runbook_for_article(article, pool)
            playbook = playbook or pb.id
            out.update({"article": article, "runbook": pb.id})
            lines.append(runbook_text(pb, article))
        elif error or code:
            found_code, message = parse_error(error, code or None)
            matches = playbooks_for_error(found_code, message, pool)
            out.update({"error": {"code": found_code, "message": message},
                        "matches": [{"playbook": m.playbook.id, "signals": [s.id for s in m.signals],
                                     "articles": m.articles} for m in matches]})
            if not matches:
                lines.append(f"No playbook knows the error {found_code or '(no code)'}: {message[:200]}")
            for m in matches:
                lines.append(f"Error {found_code or '(no code)'} → playbook {m.playbook.id}: {m.playbook.title}")
                lines += [f"  - {s.description}" for s in m.signals]
                lines.append(f"  articles: {', '.join(m.articles)}")
            if matches:
                playbook = playbook or matches[0].playbook.id
        if ref is None:
            if article:
                text = _render_article(article, articles)
                out["rendered"] = text
                lines.append("\n" + text)
            _say(json, out, lines)
            return
        diag = run_diagnosis(azure(endpoint, ca_bundle, subscription), ref, pool, playbook=playbook or None)
        rendered = matched_articles(diag, articles) if articles else []
        if (article or error or code) and playbook and diag.playbook is not None:  # a playbook the input named
            agrees = diag.playbook.id in diag.matched
            out["vm_agrees"] = agrees
            lines.append(f"{ref}: its own evidence {'agrees' if agrees else 'does not show this failure'} "
                         f"(playbook {diag.playbook.id})")
        if json:
            print_json({**out, **diagnosis_json(diag), "articles": rendered})
            return
        print(fit_lines([*lines, diagnosis_text(diag)]))
        for one in rendered:
            print("\n" + one["rendered"])


def _render_article(article_id: str, corpus: str) -> str:
    """The article with its placeholders' sample values, from ``corpus`` (default: RUNBOOKS_ARTICLES or the
    shared corpus beside the repository); a line saying why when there is none (a user's clone has none)."""
    from runbooks.articles import default_corpus_dir, find_article, load_corpus, render_article
    from runbooks.errors import UsageError

    try:
        folder = corpus or str(default_corpus_dir())
        return render_article(find_article(load_corpus(folder), article_id), {})
    except UsageError as e:
        return f"(the article's text is not shown: {e}; pass --articles DIR with a SelfHelp corpus)"


def _say(as_json: bool, data: dict[str, object], lines: list[str]) -> None:
    if as_json:
        print_json(data)
    else:
        from runbooks.text import fit_lines

        print(fit_lines(lines))


@task(iterable=["set_"],
      help={"vm": VM_HELP,
            "playbook": "the playbook id (default: the one whose detection holds; see invoke playbooks.list)",
            "scenario": "the scenario id (default: the one that fits; asked when several fit and the choice matters)",
            "set": "a step parameter STEP.PARAM=VALUE (repeatable), e.g. --set snapshot-disks.incremental=true",
            "size": "the VM size a resize step takes (as --set resize-vm.size=SIZE), e.g. Standard_D4s_v5; checked "
            "before the first write",
            "dry_run": "print the full plan (or the run it would resume) and stop: zero writes",
            "yes": "do not ask (for automation)",
            "plan_out": "also save the plan to this file (apply it later with: invoke apply --plan FILE)",
            "json": "print the plan as JSON", "admin_secret": "where steps that set an admin password read it: "
            "env:NAME (default env:RUNBOOKS_ADMIN_PASSWORD) or a Key Vault secret URL "
            "https://VAULT.vault.azure.net/secrets/NAME[/VERSION], read with the same Azure credential (on "
            "armsim: ENDPOINT/keyvault/VAULT/secrets/NAME); checked before any write, never printed or stored",
            "verify_timeout": "seconds verification may wait, e.g. for the VM agent (default: the playbook's)",
            **CONNECTION_HELP, **STORE_HELP})
def remediate(c: Context, vm: str, playbook: str = "", scenario: str = "", set_: list[str] | None = None,
              size: str = "", dry_run: bool = False, yes: bool = False, plan_out: str = "", json: bool = False,
              admin_secret: str = "", verify_timeout: str = "", endpoint: str = "", ca_bundle: str = "",
              subscription: str = "", store: str = "") -> None:
    """Fix a VM with the playbook that fits: plan, show every step, ask before destructive ones, apply, verify.

    Re-running it after an interruption resumes the unfinished run from its journal.
    """
    with user_errors(json):
        from pathlib import Path

        from runbooks.azure import parse_secret_ref
        from runbooks.errors import AdviceOnly, UsageError
        from runbooks.journal import write_private
        from runbooks.observe import VmRef
        from runbooks.plan import Plan
        from runbooks.remediate import parse_settings, remediate_vm
        from runbooks.render import outcome_text, plan_text
        from runbooks.sweep import parse_number

        ref = VmRef.parse(vm)
        timeout = parse_number("verify-timeout", verify_timeout, float) if verify_timeout else None
        settings = parse_settings([*(set_ or []), *([f"resize-vm.size={size}"] if size else [])])
        if admin_secret:
            parse_secret_ref(admin_secret)  # bad syntax is a usage error whichever scenario runs
        if plan_out and not Path(plan_out).expanduser().resolve().parent.is_dir():
            raise UsageError(f"--plan-out {plan_out}: the folder does not exist")
        run_hooks = hooks(yes, dry_run)
        az = azure(endpoint, ca_bundle, subscription)

        def show(plan: Plan) -> None:
            if plan_out:
                write_private(Path(plan_out), plan.dumps())
            if json:
                print_json(plan.to_dict())
            else:
                print(plan_text(plan))

        try:
            result = remediate_vm(az, ref, run_hooks, playbook=playbook or None, scenario=scenario or None,
                                  settings=settings, admin_secret=admin_secret or None,
                                  verify_timeout=timeout, yes=yes, dry_run=dry_run, store=store,
                                  show_plan=show)
        except AdviceOnly as advice:  # a recommendation: shown, and nothing was asked to change
            if json:
                print_json({"advice": str(advice), "writes": az.counter.writes})
            else:
                from runbooks.text import fit_lines

                print(fit_lines(str(advice).splitlines()))
            return
        if result.outcome is None:
            if not json:
                print(f"Dry run: nothing was changed ({az.counter.writes} writes).")
            return
        print(outcome_text(result.outcome))


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
        run_hooks = hooks(yes)
        print(outcome_text(apply_saved(azure(endpoint, ca_bundle, subscription), saved, run_hooks, yes=yes,
                                       store=store)))


@task(help={"vm": VM_HELP, "yes": "do not ask (for automation)", **CONNECTION_HELP, **STORE_HELP})
def resume(c: Context, vm: str, yes: bool = False, endpoint: str = "", ca_bundle: str = "",
           subscription: str = "", store: str = "") -> None:
    """Continue an interrupted remediation of this VM from its journal."""
    with user_errors():
        from runbooks.observe import VmRef
        from runbooks.remediate import resume as run_resume
        from runbooks.render import outcome_text

        ref = VmRef.parse(vm)
        run_hooks = hooks(yes)
        print(outcome_text(run_resume(azure(endpoint, ca_bundle, subscription), ref, run_hooks, yes=yes,
                                      store=store)))


@task(help={"resource_group": "only VMs of this resource group (the VM list is still read subscription-wide)",
            "playbook": "sweep for this playbook alone; one detected only when named (iops-limit) reads each VM in "
            "scope for it",
            "remediate": "remediate every VM found, as remediate --yes does (default: report only, read-only)",
            "diagnose": "report mode: also run the full diagnosis of each VM found (about 8 reads per VM)",
            "max_concurrency": "VMs worked on at a time, 1-10 (default 4)",
            "max_errors": "start no new remediation once this many have failed (default 1)",
            "max_vms": "refuse, before any change, to remediate more VMs than this (default 10)",
            "admin_secret": "as for remediate: where from-image reads the admin password (env:NAME or a Key "
            "Vault secret URL)",
            "verify_timeout": "as for remediate: seconds to wait for the VM agent to be Ready",
            "prefer": "the scenario for VMs that several fit when their playbook says the choice matters (e.g. "
            "from-os-disk); without it such VMs are skipped",
            "json": "print the report as JSON", **CONNECTION_HELP, **STORE_HELP})
def sweep(c: Context, resource_group: str = "", playbook: str = "", remediate: bool = False, diagnose: bool = False,
          max_concurrency: str = "4", max_errors: str = "1", max_vms: str = "10", admin_secret: str = "",
          verify_timeout: str = "", prefer: str = "", json: bool = False, endpoint: str = "", ca_bundle: str = "",
          subscription: str = "", store: str = "") -> None:
    """Find every VM in a state a playbook covers (paged VM list, not one read per VM); optionally remediate them.

    Exits 1 when a remediation failed or remediations stopped early (--max-errors, Ctrl-C).
    """
    with user_errors(json):
        from runbooks.sweep import check_options, check_prefer, console_progress, parse_number, sweep_text
        from runbooks.sweep import sweep as run_sweep

        counts = {"max_concurrency": parse_number("max-concurrency", max_concurrency, int),
                  "max_errors": parse_number("max-errors", max_errors, int),
                  "max_vms": parse_number("max-vms", max_vms, int)}
        timeout = parse_number("verify-timeout", verify_timeout, float) if verify_timeout else None
        check_options(None, resource_group or None, **counts)  # the subscription id: once it is resolved
        az = azure(endpoint, ca_bundle, subscription)
        with console_progress() as show:
            report = run_sweep(az, resource_group=resource_group or None, playbook=playbook or None,
                               remediate=remediate, diagnose=diagnose,
                               admin_secret=admin_secret or None, verify_timeout=timeout,
                               prefer=check_prefer(prefer), store=store or None,
                               on_event=show, **counts)
        if json:
            print_json(report.to_dict())
        else:
            print(sweep_text(report))
        if not report.ok:
            raise Exit(code=1)


