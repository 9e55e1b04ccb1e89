"""Remediation benchmark (prints figures; asserts nothing).

For each seed scenario, on a fresh armsim world served on loopback at the given latency scale:

* time to recovery (plan + apply + verify) ÷ the critical-path lower bound armsim reports for the operations
  the run started (the issue's target is <= 1.05);
* ARM reads and writes of the remediation, counted by the client (``Azure.counter``, every HTTP attempt)
  and cross-checked with armsim's own request log;
* the minimum of reads the run's decisions need, computed per run from armsim's request log and the plan, and
  reads ÷ that minimum (the issue's target is <= 1.3). The minimum is the sum of:
  - the observation: every read the planning made (diagnosis, scenario facts), as logged;
  - the preflight: the permission reads logged before the first write;
  - one poll per long-running call of the plan (``begin_*``): the one that says it ended;
  - one GET per PUT among them: the resource after, which the step's goal check needs (azure-core's final GET);
  - before each destructive step, one read of each resource the plan observed whose identity it checks (the VM,
    its disks, NICs, public IPs; not those the run itself wrote before the step, nor backups made by this run);
  - one verification pass: the reads of one ``observe`` of the facts the verify conditions need and of the
    fallout reports, replayed once after the run (outside the timed part);
  Nothing else is counted: the goal checks of resources another call may have changed (a disk Azure deleted with
  the VM) and the polls of a wait whose end nobody knows (a VM agent booting) are the run's overhead;
* whether the client's poller had already seen each kind of operation finish (``warm``: it does not poll before
  the shortest one of the kind would have ended) or not (``cold``: it polls at ARM's Retry-After);
* writes during the dry run (must be 0).

Each figure is measured under three ways armsim hints the next poll (``--polling``, default all three):
``azure``, each provider's fixed Retry-After as ARM sends it (Compute 10 s, disks 2 s, Network 3 s, scaled);
``none``, no hint at all (the client's own interval decides: 5 s scaled for the runbook, azure-core's 30 s
scaled for the plain script); ``exact``, the time left (an oracle no real ARM is, flattering every client).
Beside the redeploy runbook, the same remediation written as a plain sequential SDK script (redeploy, then
poll the instance view until the agent is Ready) is measured in the same run, under the same hints.

    python bench/remediation.py [--latency-scale 0.02] [--runs 1] [--polling azure,none,exact] [--warm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from armsim import ArmSim
from runbooks.apply import Hooks, identities
from runbooks.azure import Azure, Connection, duration_memory, operation_kind
from runbooks.observe import VmRef, observe
from runbooks.plan import Plan
from runbooks.remediate import plan_remediation, remediate
from runbooks.verify import conditions, report_fallout

SCENARIOS = (("generalized-after-capture", "rg-demo/app-01", "from-image"),
             ("generalized-without-sysprep", "rg-demo/api-01", "from-os-disk"),
             ("redeploy-vm", "rg-redeploy/web-01", "redeploy"))


@dataclass
class Figures:
    seed: str
    scenario: str
    seconds: float
    bound: float
    plan_writes: int
    client_reads: int
    client_writes: int
    log_reads: int
    log_writes: int
    dry_client_writes: int
    dry_log_writes: int
    dry_reads: int
    minimum: int = 0
    warm: bool = False

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound if self.bound else float("nan")

    @property
    def read_ratio(self) -> float:
        return self.log_reads / self.minimum if self.minimum else float("nan")


def minimum_reads(arm: ArmSim, az: Azure, plan: Plan, planning: list[dict], run: list[dict]) -> int:
    """The reads the run's decisions need (see the module docstring), from the request log and the plan."""
    first_write = next((r["seq"] for r in run if r["kind"] != "read"), None)
    preflight = sum(1 for r in run if r["kind"] == "read" and r["path"].endswith("/Microsoft.Authorization/permissions")
                    and (first_write is None or r["seq"] < first_write))
    calls = [c for s in plan.steps for c in s.calls]
    lro = [c for c in calls if c.op.rsplit(".", 1)[-1].startswith("begin_")]
    puts = [c for c in lro if c.op.endswith("begin_create_or_update")]
    safety, written = 0, set()
    observed = identities(plan.observation)
    for step in plan.steps:
        if step.destructive:
            safety += sum(1 for rid in observed if rid not in written)
        written |= {c.resource_id.lower() for c in step.calls if c.op.endswith("create_or_update")}
    mark = arm.last_request
    conds = conditions(plan.verify)
    after = observe(az, plan.observation.ref, set().union(*(c.needs for c in conds)) | {"vm"} if conds else {"vm"},
                    missing_ok=True, user_data=False)
    report_fallout(az, plan, after)
    verification = sum(1 for r in arm.requests(mark) if r["kind"] == "read")
    return len([r for r in planning if r["kind"] == "read"]) + preflight + len(lro) + len(puts) + safety \
        + verification


def _kinds(plan: Plan, endpoint: str) -> set[str]:
    """The operation kinds (``runbooks.azure.operation_kind``) of the plan's long-running calls."""
    methods = {"begin_create_or_update": "PUT", "begin_delete": "DELETE", "begin_update": "PATCH"}
    out = set()
    for call in (c for s in plan.steps for c in s.calls):
        op = call.op.rsplit(".", 1)[-1]
        if op.startswith("begin_"):
            action = "" if op in methods else "/" + op.removeprefix("begin_").replace("_", "")
            out.add(operation_kind(methods.get(op, "POST"), f"{endpoint}{call.resource_id}{action}"))
    return out


HINTS = {"azure": "azure", "none": "none", "exact": "ms"}  # --polling → armsim's config.retry_after


def _reset(arm: ArmSim, seed: str, polling: str) -> None:
    arm.reset()
    arm.world.config.retry_after = HINTS[polling]
    arm.seed(seed)


def measure(arm: ArmSim, seed: str, vm: str, scenario: str, polling: str = "exact") -> Figures:
    _reset(arm, seed, polling)
    scale = arm.world.config.latency_scale
    az = Azure(Connection(arm.subscription_id, arm.endpoint, arm.ca_bundle, polling_interval=5.0 * scale),
               credential=arm.credential())
    ref = VmRef.parse(vm)

    mark = arm.last_request
    plan_remediation(az, ref, scenario)  # what --dry-run does: observe, diagnose, plan
    dry_log = arm.requests(mark)
    dry_reads, dry_writes = az.counter.reads, az.counter.writes

    mark, since, started = arm.last_request, time.time(), time.monotonic()
    reads0, writes0 = az.counter.reads, az.counter.writes
    _, plan = plan_remediation(az, ref, scenario)
    planned = arm.last_request
    memory = duration_memory(az.conn)
    warm = all(memory.expected(k) is not None for k in _kinds(plan, arm.endpoint))
    remediate(az, plan, Hooks(confirm=lambda q: True, progress=lambda line: None), yes=True)
    took = time.monotonic() - started
    log = arm.requests(mark)
    figures = Figures(seed, scenario, took, float(arm.critical_path(since)["seconds"]), plan.writes,
                      az.counter.reads - reads0, az.counter.writes - writes0,
                      sum(1 for r in log if r["kind"] == "read"), sum(1 for r in log if r["kind"] != "read"),
                      dry_writes, sum(1 for r in dry_log if r["kind"] != "read"), dry_reads, warm=warm)
    figures.minimum = minimum_reads(arm, az, plan, [r for r in log if r["seq"] <= planned],
                                    [r for r in log if r["seq"] > planned])
    return figures


def plain_script(arm: ArmSim, polling: str) -> tuple[float, float]:
    """The redeploy remediation as a plain sequential SDK script an operator would write: begin_redeploy, wait
    for it, then poll the instance view until the VM agent is Ready. (time to recovery, armsim's bound)."""
    _reset(arm, "redeploy-vm", polling)
    scale = arm.world.config.latency_scale
    compute = arm.compute_client(polling_interval=30.0 * scale)  # azure-core's default interval, scaled
    since, started = time.time(), time.monotonic()
    compute.virtual_machines.begin_redeploy("rg-redeploy", "web-01").result()
    while True:
        agent = compute.virtual_machines.instance_view("rg-redeploy", "web-01").vm_agent
        if agent is not None and any(st.display_status == "Ready" for st in agent.statuses or []):
            break
        time.sleep(30.0 * scale)
    return time.monotonic() - started, float(arm.critical_path(since)["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-scale", type=float, default=0.02,
                        help="armsim's clock: 1.0 = Azure's real durations (default 0.02)")
    parser.add_argument("--runs", type=int, default=1, help="runs per scenario (the median is printed)")
    parser.add_argument("--warm", action="store_true",
                        help="run each scenario once unmeasured first (as on a machine that has run it before: its "
                        "RUNBOOKS_HOME knows how long each kind of operation takes)")
    parser.add_argument("--polling", default="azure,none,exact",
                        help="poll hints to measure under, comma-separated: azure, none, exact (default: all)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.polling.split(",") if m.strip()]
    if not modes or any(m not in HINTS for m in modes):
        parser.error(f"--polling takes a comma-separated list of {', '.join(HINTS)}")
    with tempfile.TemporaryDirectory(prefix="runbooks-bench-") as home, \
            ArmSim(host="127.0.0.1", latency_scale=args.latency_scale, throttling=False) as arm:
        os.environ["RUNBOOKS_HOME"] = home
        os.environ.setdefault("RUNBOOKS_ADMIN_PASSWORD", "Bench-" + os.urandom(9).hex() + "!a1")
        print(f"armsim {arm.endpoint}, latency scale {args.latency_scale:g}, {args.runs} run(s) per scenario")
        header = (f"{'scenario':<44} {'TTR s':>7} {'bound s':>8} {'ratio':>6}  {'reads c/log':>11} {'min':>4} "
                  f"{'r/min':>5} {'poller':>6}  {'writes c/log/plan':>17}  {'dry-run writes c/log':>20}")
        print(header)
        print("-" * len(header))
        for polling in modes:
            print(f"--- poll hints: {polling}")
            for seed, vm, scenario in SCENARIOS:
                if args.warm:
                    measure(arm, seed, vm, scenario, polling)
                runs = [measure(arm, seed, vm, scenario, polling) for _ in range(args.runs)]
                f = sorted(runs, key=lambda r: r.ratio)[len(runs) // 2]
                flag = "" if (f.client_writes == f.log_writes == f.plan_writes and f.client_reads == f.log_reads
                              and f.dry_client_writes == f.dry_log_writes == 0) else "  MISMATCH"
                print(f"{seed + ' (' + scenario + ')':<44} {f.seconds:>7.3f} {f.bound:>8.3f} {f.ratio:>6.3f}  "
                      f"{f.client_reads:>5}/{f.log_reads:<5} {f.minimum:>4} {f.read_ratio:>5.2f} "
                      f"{'warm' if f.warm else 'cold':>6}  {f.client_writes:>7}/{f.log_writes}/{f.plan_writes:<5}  "
                      f"{f.dry_client_writes:>12}/{f.dry_log_writes:<7}{flag}")
                if args.runs > 1:
                    print(f"{'':<44} ratios: min {min(r.ratio for r in runs):.3f}, median "
                          f"{statistics.median(r.ratio for r in runs):.3f}, max {max(r.ratio for r in runs):.3f}")
            plain = sorted((plain_script(arm, polling) for _ in range(args.runs)), key=lambda r: r[0] / r[1])
            took, bound = plain[len(plain) // 2]
            print(f"{'plain SDK script (redeploy, then poll)':<44} {took:>7.3f} {bound:>8.3f} {took / bound:>6.3f}")
        print("TTR: plan + apply + verify, wall clock. bound: armsim's critical-path lower bound for the same "
              "operations. c = client counter, log = armsim's request log. min: the reads the decisions need "
              "(module docstring); r/min = log reads / min. poller: warm when every kind of operation the run "
              "made had finished once before on this connection.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
