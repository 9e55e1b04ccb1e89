"""``invoke demo``: the whole story on armsim, with the real SDK over real HTTPS.

Starts armsim in-process, seeds both seed scenarios (a VM generalized after a proper capture, and one
generalized by mistake), and for each: diagnose, dry-run (proving zero writes from armsim's own log),
remediate with --yes, verify. Credentials go through DefaultAzureCredential and armsim's managed-identity
endpoint, exactly as in an Azure Automation job.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runbooks.apply import Hooks
from runbooks.azure import Azure, Connection
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate, run_diagnosis
from runbooks.render import diagnosis_text, outcome_text, plan_text


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


def run_demo(latency_scale: float = 0.02) -> None:
    from armsim import ArmSim

    with tempfile.TemporaryDirectory(prefix="runbooks-demo-") as home, \
            ArmSim(latency_scale=latency_scale) as arm:
        _title(f"armsim is up at {arm.endpoint} (latency scale {latency_scale:g}: Azure's durations x "
               f"{latency_scale:g})")
        cases = [("generalized-after-capture", "rg-demo/app-01", None),
                 ("generalized-without-sysprep", "rg-demo/api-01", "from-os-disk")]
        for seed, _, _ in cases:
            arm.seed(seed)
        print("Seeded: app-01 (sysprepped, then captured) and api-01 (captured without sysprep; its disk still "
              "holds the specialized OS).")
        env = {**arm.env(), "RUNBOOKS_HOME": home, "RUNBOOKS_ADMIN_PASSWORD": secrets.token_urlsafe(18) + "!a1"}
        env.pop("RUNBOOKS_ARM_ENDPOINT")
        with _env(env):
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            conn = Connection.from_env(endpoint=arm.endpoint, ca_bundle=arm.ca_bundle)
            for _, vm, chosen in cases:
                az = Azure(conn, credential)
                ref = VmRef.parse(vm)
                _title(f"{vm} — diagnose (read-only)")
                print(diagnosis_text(run_diagnosis(az, ref)))
                if chosen:
                    print(f"\nThe operator knows this guest was never sysprepped, so picks --scenario {chosen}.")
                _title(f"{vm} — remediate --dry-run")
                mark = arm.last_request
                _, plan = plan_remediation(az, ref, chosen)
                print(plan_text(plan))
                print(f"armsim's request log: {len(arm.writes(mark))} writes during the dry run.")
                _title(f"{vm} — remediate --yes")
                started = time.monotonic()
                since = time.time()
                reads0, writes0 = az.counter.reads, az.counter.writes
                outcome = remediate(az, plan, Hooks(confirm=lambda q: True, progress=print), yes=True)
                took = time.monotonic() - started
                print(outcome_text(outcome))
                bound = arm.critical_path(since)["seconds"]
                print(f"Time to recovery {took:.2f}s; critical-path lower bound {bound:.2f}s "
                      f"(ratio {took / bound:.3f}); ARM reads {az.counter.reads - reads0}, "
                      f"writes {az.counter.writes - writes0}.")
        _title("done: both VMs are running again, not generalized, VM agent Ready")
