"""``invoke demo``: the whole story on armsim, with the real SDK over real HTTPS.

Starts armsim in-process and, for each playbook, seeds its scenario in a fresh world: a VM generalized after a
proper capture, one generalized by mistake, one stuck on a faulty host, one left deallocated by an allocation
failure, and the sizing families (a size its cluster does not offer, a restricted size, a vCPU quota, disks
capped by the size). For each: diagnose, dry-run (zero writes, from armsim's own log), remediate with --yes
through the same path the CLI uses (the sizing fixes named, as their advice says), verify. Credentials go through
DefaultAzureCredential and armsim's managed-identity endpoint, exactly as in an Azure Automation job.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

from invoke import Context

from tasks._common import task, user_errors

# (armsim scenario, VM, scenario the operator picks or None for the recommended one, why, playbook named or None)
CASES = [
    ("generalized-after-capture", "rg-demo/app-01", "from-image",
     "The operator knows this guest was sysprepped before the capture, so picks --scenario from-image.", None),
    ("generalized-without-sysprep", "rg-demo/api-01", "from-os-disk",
     "The operator knows this guest was never sysprepped, so picks --scenario from-os-disk.", None),
    ("redeploy-vm", "rg-redeploy/web-01", None, "", None),
    ("allocation-failure", "rg-alloc/web-01", None, "", None),
    ("size-not-in-cluster", "rg-resize/api-05", None, "", None),
    ("sku-not-available", "rg-sku/db-01", "resize-to-fitting-size",
     "The advice names the restriction and the sizes that fit; the operator applies its fix by name.", None),
    ("quota-exceeded", "rg-quota/batch-02", "resize-within-quota",
     "Rather than wait for a quota increase, the operator takes the advice's size of a family with room.", None),
    ("iops-limit", "rg-iops/io-01", "resize-in-place",
     "An IOPS RCA names this playbook; the operator resizes to the closest size that covers the disks.",
     "iops-limit"),
    ("bootdiag-storage", "rg-bootdiag/diag-01", None, "", None),
    ("nic-change", "rg-nic/nic-01", None, "", None),
    ("provisioning-failure", "rg-prov/app-01", None, "", None),
    ("marketplace-terms", "rg-market/fw-01", "accept-terms",
     "Accepting a publisher's licence binds the subscription: the operator names the fix.", None),
    ("marketplace-plan", "rg-plan/nva-13", None, "", None),  # advice only: the plan block to use
    ("resource-locked", "rg-locked/lk-01", "lift-lock-and-retry",
     "The lock's owners agree to lift it for the start; the operator names the fix, which puts the lock back.", None),
]
# The families with nothing to repair in ARM: (armsim scenario, VM). Each is explained, with its article and
# post-checks, and nothing is written.
EXPLAINED: list[tuple[str, str]] = [
    ("platform-event", "rg-events/ev-01"),
    ("customer-initiated-event", "rg-events/ev-04"),
    ("guest-os-crash", "rg-events/ev-06"),
    ("image-preparation", "rg-img/img-02"),
    ("policy-denied", "rg-policy/pol-01"),
    ("subscription-billing", "rg-billing/bill-01"),
    ("out-of-scope-failure", "rg-ade/ade-01"),
]


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _title(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 90 - len(text)), flush=True)


def run_demo(latency_scale: float = 0.02, only: str = "") -> None:
    from armsim import ArmSim
    from armsim.scenarios import SCENARIOS
    from runbooks.apply import Hooks
    from runbooks.azure import Azure, Connection
    from runbooks.errors import AdviceOnly, UsageError
    from runbooks.observe import VmRef
    from runbooks.progress import for_stream
    from runbooks.remediate import remediate_vm, run_diagnosis
    from runbooks.render import diagnosis_text, outcome_text, plan_text
    from runbooks.text import fit_lines

    def say(text: object) -> None:  # every line of the demo fits 100 columns (the renderers' own text already does)
        print(fit_lines(str(text).splitlines()), flush=True)

    if not latency_scale > 0:
        raise UsageError(f"--latency-scale must be greater than 0 (got {latency_scale:g})")
    chosen_cases = {c.strip() for c in only.split(",") if c.strip()}
    known = {c[0] for c in CASES} | {c[0] for c in EXPLAINED}
    if chosen_cases - known:
        raise UsageError(f"--only: unknown case(s) {', '.join(sorted(chosen_cases - known))}; use "
                         f"{', '.join(sorted(known))}")
    cases = [c for c in CASES if c[0] in SCENARIOS and (not chosen_cases or c[0] in chosen_cases)]
    explained = [c for c in EXPLAINED if c[0] in SCENARIOS and (not chosen_cases or c[0] in chosen_cases)]
    tracker = for_stream()  # live status lines on a terminal, plain lines otherwise
    with closing(tracker), tempfile.TemporaryDirectory(prefix="runbooks-demo-") as home, \
            ArmSim(latency_scale=latency_scale) as arm:
        _title(f"armsim is up at {arm.endpoint} (latency scale {latency_scale:g}: Azure's durations x "
               f"{latency_scale:g})")
        say(f"Each of the {len(cases)} cases below is seeded in a fresh world, with healthy or look-alike VMs "
            "beside its VM.")
        # polls without a hint wait as long as they would on Azure, at armsim's pace
        env = {**arm.env(), "RUNBOOKS_HOME": home, "RUNBOOKS_ADMIN_PASSWORD": secrets.token_urlsafe(18) + "!a1",
               "RUNBOOKS_POLL_INTERVAL_S": f"{max(0.05, 5.0 * latency_scale):g}",
               # verification's wait for the VM agent models Azure's minutes: at armsim's pace too
               "RUNBOOKS_TIMEOUT_SCALE": f"{latency_scale:g}"}
        env.pop("RUNBOOKS_ARM_ENDPOINT")
        with _env(env):
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            conn = Connection.from_env(endpoint=arm.endpoint, ca_bundle=arm.ca_bundle)
            for seed, vm, chosen, why, playbook in cases:
                arm.reset()
                arm.seed(seed)
                az = Azure(conn, credential)
                ref = VmRef.parse(vm)
                hooks = Hooks(confirm=lambda q: True, progress=tracker.line, tracker=tracker)
                _title(f"{vm} — diagnose (read-only)")
                print(diagnosis_text(run_diagnosis(az, ref, playbook=playbook)))
                if why:
                    say(f"\n{why}")
                _title(f"{vm} — remediate --dry-run")
                mark = arm.last_request
                try:
                    remediate_vm(az, ref, hooks, playbook=playbook, scenario=chosen, dry_run=True,
                                 show_plan=lambda p: print(plan_text(p)))
                except AdviceOnly as advice:  # the fix is the operator's (a template change): nothing to run
                    say(advice)
                    print(f"armsim's request log: {len(arm.writes(mark))} writes; the playbook advises only.")
                    continue
                print(f"armsim's request log: {len(arm.writes(mark))} writes during the dry run.")
                _title(f"{vm} — remediate --yes")
                started = time.monotonic()
                reads0, writes0 = az.counter.reads, az.counter.writes
                result = remediate_vm(az, ref, hooks, playbook=playbook, scenario=chosen, yes=True)
                took = time.monotonic() - started
                assert result.outcome is not None
                print(outcome_text(result.outcome))
                # how this compares with the critical path is bench/remediation.py's to measure, not the demo's
                print(f"Recovered in {took:.1f} s; {az.counter.reads - reads0} ARM reads, "
                      f"{az.counter.writes - writes0} writes.")
            for world, target in explained:
                arm.reset()
                arm.seed(world)
                az, ref = Azure(conn, credential), VmRef.parse(target)
                _title(f"{target} — diagnose (read-only)")
                print(diagnosis_text(run_diagnosis(az, ref)))
                _title(f"{target} — remediate --yes (nothing to repair in ARM: explained)")
                mark = arm.last_request
                try:
                    remediate_vm(az, ref, Hooks(confirm=lambda q: True, progress=tracker.line, tracker=tracker),
                                 yes=True)
                except AdviceOnly as explained:
                    say(explained)
                print(f"armsim's request log: {len(arm.writes(mark))} writes.")
        _title("done: every VM is fixed and passes its playbook's verification, or explained")


@task(help={"latency_scale": "how fast armsim's clock runs for the demo (1.0 = Azure's real durations)",
            "only": "run only these cases: armsim scenario ids, comma-separated (e.g. redeploy-vm,nic-change)"})
def demo(c: Context, latency_scale: float = 0.02, only: str = "") -> None:
    """Start armsim, seed a VM per playbook, then diagnose, dry-run, remediate and verify each."""
    with user_errors():
        run_demo(latency_scale, only)
