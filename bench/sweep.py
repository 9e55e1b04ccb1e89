"""Fleet sweep benchmark (prints figures; asserts nothing).

armsim runs in its own process (throttling on, the given latency scale: ARM's token buckets refill 1/scale times
faster), seeded with the ``fleet`` scenario for each fleet size given; in the same run:

* sweep: ``runbooks.sweep.sweep`` in report mode (paged VM list with statusOnly=true, one activity-log read, one
  image list), reading raw pages of ARM's JSON;
* sweep, SDK models (``--sdk-models``): the same through the SDK's pagers and models (``sweep.SDK_MODELS``), as
  before issue 14;
* sweep --diagnose: the same plus the full diagnosis of each VM found (for scale: it costs reads per VM);
* naive: the plain VM list, then one instance-view GET per VM;
* naive, unpaced (``--unpaced``): the same with the pacer off, to show what ARM's buckets do to it.

Requests and 429s are taken from armsim's request log; wall time and client CPU (``time.process_time()`` of this
process: armsim's CPU is another process's) from the client. Targets: sweep requests <= 1/50 of the naive ones;
a sweep of 10 000 VMs under 2 s of client CPU at latency scale 0.1. ``--sweep-only`` skips the diagnose and
naive rows (for large fleets).

    python bench/sweep.py [--vms 10000 [50000 …]] [--latency-scale 0.1] [--generalized-fraction 0.01]
                          [--sdk-models] [--sweep-only] [--unpaced]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from armsim.identity import StaticTokenCredential
from runbooks import sweep as sweep_module
from runbooks.azure import Azure, Connection
from runbooks.sweep import sweep

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 50
TARGET_CPU_S = 2.0  # for 10 000 VMs


@dataclass
class Row:
    name: str
    requests: int
    throttled: int
    seconds: float
    cpu_s: float
    found: set[str]
    paced_s: float


class RemoteArm:
    """armsim in its own process (``python -m armsim serve``), driven through its control API."""

    def __init__(self, info: dict[str, str]) -> None:
        self.info = info
        self.endpoint, self.ca_bundle, self.subscription_id = info["endpoint"], info["ca_bundle"], \
            info["subscription_id"]
        self.http = requests.Session()

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, f"{self.endpoint}/_armsim/{path}", json=body, timeout=600, verify=self.ca_bundle)
        r.raise_for_status()
        return r.json()

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.control("GET", "config"))

    @property
    def last_request(self) -> int:
        return int(self.control("GET", "requests?since=999999999")["last"])

    def requests(self, since: int) -> list[dict[str, Any]]:
        return list(self.control("GET", f"requests?since={since}")["requests"])

    def credential(self) -> StaticTokenCredential:
        return StaticTokenCredential("armsim-user", self.control("GET", "info")["tenant_id"])


@contextmanager
def remote_armsim(latency_scale: float) -> Iterator[RemoteArm]:
    server = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--latency-scale", str(latency_scale)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        yield RemoteArm(json.loads(server.stdout.readline()))  # type: ignore[union-attr]
    finally:
        server.terminate()
        server.wait(timeout=60)


def _azure(arm: RemoteArm, paced: bool = True) -> Azure:
    az = Azure(Connection(arm.subscription_id, arm.endpoint, arm.ca_bundle), credential=arm.credential())
    az.pacer.enabled = paced
    return az


def _measure(arm: RemoteArm, name: str, az: Azure, run: Callable[[Azure], set[str]]) -> Row:
    # start each approach with full buckets: wait out the refill of what the previous one used
    config = arm.config
    read_capacity, read_rate = config["buckets"]["read"]
    time.sleep(read_capacity / (read_rate / config["latency_scale"]) + 0.05)
    mark = arm.last_request
    started, cpu = time.monotonic(), time.process_time()
    found = run(az)
    took, cpu_s = time.monotonic() - started, time.process_time() - cpu
    log = arm.requests(mark)
    return Row(name, len(log), sum(1 for r in log if r["status"] == 429), took, cpu_s, found, az.pacer.waited_s)


def _sweep(diagnose: bool, sdk_models: bool = False) -> Callable[[Azure], set[str]]:
    def run(az: Azure) -> set[str]:
        sweep_module.SDK_MODELS = sdk_models
        try:
            return {i.vm_id.lower() for i in sweep(az, diagnose=diagnose, max_concurrency=8).items}
        finally:
            sweep_module.SDK_MODELS = False

    return run


def _naive(az: Azure) -> set[str]:
    """What a script without statusOnly does: list the VMs, then read each one's instance view."""
    found = set()
    for vm in az.compute.virtual_machines.list_all():
        rg, name = vm.id.split("/")[4], vm.name
        view = az.compute.virtual_machines.instance_view(rg, name)
        if any(str(s.code).lower() == "osstate/generalized" for s in view.statuses or []):
            found.add(vm.id.lower())
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, nargs="+", default=[10_000], help="fleet sizes, each its own run")
    parser.add_argument("--resource-groups", type=int, default=20)
    parser.add_argument("--generalized-fraction", type=float, default=0.01)
    parser.add_argument("--latency-scale", type=float, default=0.1,
                        help="armsim's clock: 1.0 = Azure's real durations and refill rates (default 0.1)")
    parser.add_argument("--unpaced", action="store_true", help="also run the naive approach with the pacer off")
    parser.add_argument("--sdk-models", action="store_true", help="also sweep through the SDK's models (as before)")
    parser.add_argument("--sweep-only", action="store_true", help="skip the diagnose and naive rows")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runbooks-bench-") as home, remote_armsim(args.latency_scale) as arm:
        os.environ["RUNBOOKS_HOME"] = home
        # imports, playbooks and TLS connections once, before anything is timed (a job pays them at start)
        arm.control("POST", "scenarios/fleet", {"vms": 10, "resource_groups": 1})
        for sdk_models in (False, args.sdk_models):
            _sweep(False, sdk_models)(_azure(arm))
        for vms in args.vms:
            _one_fleet(arm, args, vms)
    return 0


def _one_fleet(arm: RemoteArm, args: argparse.Namespace, vms: int) -> None:
    arm.control("POST", "reset")
    seeded = arm.control("POST", "scenarios/fleet", {"vms": vms, "resource_groups": args.resource_groups,
                                                     "generalized_fraction": args.generalized_fraction})
    reads, rate = arm.config["buckets"]["read"]
    print(f"\narmsim {arm.endpoint} (own process), latency scale {args.latency_scale:g}, throttling on (reads "
          f"bucket {reads:g}, refill {rate / args.latency_scale:g}/s); fleet of {vms} VMs in "
          f"{args.resource_groups} resource groups, {seeded['generalized']} generalized")
    rows = [_measure(arm, "sweep (raw pages)", _azure(arm), _sweep(False))]
    if args.sdk_models:
        rows.append(_measure(arm, "sweep (SDK models: the old reading)", _azure(arm), _sweep(False, sdk_models=True)))
    if not args.sweep_only:
        rows += [_measure(arm, "sweep --diagnose", _azure(arm), _sweep(True)),
                 _measure(arm, "naive (list + instance view per VM)", _azure(arm), _naive)]
        if args.unpaced:
            rows.append(_measure(arm, "naive, pacer off", _azure(arm, paced=False), _naive))
    truth = rows[0].found
    header = f"{'approach':<38} {'requests':>9} {'429s':>6} {'wall s':>8} {'CPU s':>7} {'paced s':>8}  found"
    print(header)
    print("-" * len(header))
    for r in rows:
        same = "same VMs" if r.found == truth else f"DIFFERENT ({len(r.found)})"
        print(f"{r.name:<38} {r.requests:>9} {r.throttled:>6} {r.seconds:>8.2f} {r.cpu_s:>7.2f} {r.paced_s:>8.2f}  "
              f"{len(r.found)} ({same})")
    per_10k = rows[0].cpu_s * 10_000 / max(vms, 1)
    verdict = f" (target < {TARGET_CPU_S:g} s: {'met' if rows[0].cpu_s < TARGET_CPU_S else 'MISSED'})" \
        if vms == 10_000 else ""
    print(f"sweep client CPU {rows[0].cpu_s:.2f} s for {vms} VMs, {per_10k:.2f} s per 10 000{verdict}")
    naive_row = next((r for r in rows if r.name.startswith("naive")), None)
    if naive_row is not None:
        ratio = naive_row.requests / max(rows[0].requests, 1)
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(f"naive / sweep requests: {ratio:.0f}x (target >= {TARGET_RATIO}x: {verdict}); "
              f"wall time {naive_row.seconds / max(rows[0].seconds, 1e-9):.1f}x")
    print("CPU s: client CPU (this process; armsim runs in its own). paced s: total delay the pacer imposed "
          "(summed over threads) to keep ARM's buckets from running dry.")


if __name__ == "__main__":
    raise SystemExit(main())
