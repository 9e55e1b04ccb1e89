"""Fleet sweep benchmark (prints figures; asserts nothing).

One armsim world (throttling on, the given latency scale: ARM's token buckets refill 1/scale times faster),
seeded with the ``fleet`` scenario; in the same run:

* sweep: ``runbooks.sweep.sweep`` in report mode (paged ``list_all(statusOnly=true)`` + one image list);
* sweep --diagnose: the same plus the full diagnosis of each VM found (for scale: it costs reads per VM);
* naive: the plain VM list, then one instance-view GET per VM;
* naive, unpaced (``--unpaced``): the same with the pacer off, to show what ARM's buckets do to it.

Requests and 429s are taken from armsim's request log; wall time from the client. Target: sweep requests
<= 1/50 of the naive ones.

    python bench/sweep.py [--vms 10000] [--latency-scale 0.1] [--generalized-fraction 0.01] [--unpaced]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from armsim import ArmSim
from runbooks.azure import Azure, Connection
from runbooks.sweep import sweep

TARGET_RATIO = 50


@dataclass
class Row:
    name: str
    requests: int
    throttled: int
    seconds: float
    found: set[str]
    paced_s: float


def _azure(arm: ArmSim, paced: bool = True) -> Azure:
    az = Azure(Connection(arm.subscription_id, arm.endpoint, arm.ca_bundle), credential=arm.credential())
    az.pacer.enabled = paced
    return az


def _measure(arm: ArmSim, name: str, az: Azure, run: Callable[[Azure], set[str]]) -> Row:
    # start each approach with full buckets: wait out the refill of what the previous one used
    read_capacity, read_rate = arm.world.config.buckets["read"]
    time.sleep(read_capacity / (read_rate / arm.world.config.latency_scale) + 0.05)
    mark, started = arm.last_request, time.monotonic()
    found = run(az)
    took = time.monotonic() - started
    log = arm.requests(mark)
    return Row(name, len(log), sum(1 for r in log if r["status"] == 429), took, found, az.pacer.waited_s)


def _sweep(diagnose: bool) -> Callable[[Azure], set[str]]:
    def run(az: Azure) -> set[str]:
        return {i.vm_id.lower() for i in sweep(az, diagnose=diagnose, max_concurrency=8).items}

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
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--resource-groups", type=int, default=20)
    parser.add_argument("--generalized-fraction", type=float, default=0.01)
    parser.add_argument("--latency-scale", type=float, default=0.1,
                        help="armsim's clock: 1.0 = Azure's real durations and refill rates (default 0.1)")
    parser.add_argument("--unpaced", action="store_true", help="also run the naive approach with the pacer off")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runbooks-bench-") as home, \
            ArmSim(host="127.0.0.1", latency_scale=args.latency_scale, throttling=True) as arm:
        os.environ["RUNBOOKS_HOME"] = home
        seeded = arm.seed("fleet", vms=args.vms, resource_groups=args.resource_groups,
                          generalized_fraction=args.generalized_fraction)
        reads, rate = arm.world.config.buckets["read"]
        print(f"armsim {arm.endpoint}, latency scale {args.latency_scale:g}, throttling on (reads bucket "
              f"{reads:g}, refill {rate / args.latency_scale:g}/s); fleet of {args.vms} VMs in "
              f"{args.resource_groups} resource groups, {seeded['generalized']} generalized")
        rows = [_measure(arm, "sweep", _azure(arm), _sweep(False)),
                _measure(arm, "sweep --diagnose", _azure(arm), _sweep(True)),
                _measure(arm, "naive (list + instance view per VM)", _azure(arm), _naive)]
        if args.unpaced:
            rows.append(_measure(arm, "naive, pacer off", _azure(arm, paced=False), _naive))
        truth = rows[0].found
        header = f"{'approach':<38} {'requests':>9} {'429s':>6} {'wall s':>8} {'paced s':>8}  found"
        print(header)
        print("-" * len(header))
        for r in rows:
            same = "same VMs" if r.found == truth else f"DIFFERENT ({len(r.found)})"
            print(f"{r.name:<38} {r.requests:>9} {r.throttled:>6} {r.seconds:>8.2f} {r.paced_s:>8.2f}  "
                  f"{len(r.found)} ({same})")
        sweep_row, naive_row = rows[0], rows[2]
        ratio = naive_row.requests / max(sweep_row.requests, 1)
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(f"naive / sweep requests: {ratio:.0f}x (target >= {TARGET_RATIO}x: {verdict}); "
              f"wall time {naive_row.seconds / max(sweep_row.seconds, 1e-9):.1f}x")
        print("paced s: total delay the pacer imposed (summed over threads) to keep ARM's buckets from running dry.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
