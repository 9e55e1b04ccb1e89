"""Availability-set benchmark (prints figures; asserts nothing).

allocation-failure's ``restart-set`` on a set of N members (armsim scenario ``allocation-failure`` with
``set_members=N``: shop-02 could not start on the cluster the N-1 running members hold). The run deallocates
the N-1 running members together, starts shop-02, then the N-1 others together. Printed per N:

* time to recovery (plan + apply + verify) ÷ armsim's critical-path lower bound for the operations the run
  started. That bound chains operations on a shared resource only, so it does not know that the VM must start
  before the other members (they join the cluster it is placed on); the *ordered* bound is the longest
  deallocation plus the chain of starts measured from the moment the starts began;
* writes ÷ the minimum (N-1 deallocates + N starts = 2N-1);
* reads ÷ a minimum: the VM with its instance view, its availability set, each other member once, the
  activity log, the region's sizes, SKUs and usages (N+5), one completion poll per write (2N-1), and one
  verification read of the VM and of the set's members (N+1).

    python bench/availability_set.py [--members 20] [--latency-scale 0.05] [--runs 1]
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
from runbooks.apply import Hooks
from runbooks.azure import Azure, Connection
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate


@dataclass
class Figures:
    members: int
    seconds: float
    bound: float
    ordered: float
    reads: int
    writes: int

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound if self.bound else float("nan")

    @property
    def ordered_ratio(self) -> float:
        return self.seconds / self.ordered if self.ordered else float("nan")

    @property
    def min_writes(self) -> int:
        return 2 * self.members - 1

    @property
    def min_reads(self) -> int:
        n = self.members
        return (n + 5) + (2 * n - 1) + (n + 1)


def measure(arm: ArmSim, members: int) -> Figures:
    arm.reset()
    arm.seed("allocation-failure", set_members=members)
    az = Azure(Connection(arm.subscription_id, arm.endpoint, arm.ca_bundle, polling_interval=0.05),
               credential=arm.credential())
    since, started = time.time(), time.monotonic()
    starts: list[float] = []

    def progress(line: str) -> None:
        if "start-set:" in line and not starts:
            starts.append(time.time())

    _, plan = plan_remediation(az, VmRef("rg-alloc", "shop-02"), "restart-set")
    remediate(az, plan, Hooks(confirm=lambda q: True, progress=progress), yes=True)
    took = time.monotonic() - started
    whole = arm.critical_path(since)
    # the deallocations run together (their bound: the longest on armsim's chain), then the starts, whose own
    # chain armsim measures from the moment start-set began (the VM's start, then a member's)
    deallocation = max((o["seconds"] for o in whole["operations"] if o["kind"].endswith("deallocate")), default=0.0)
    starting = float(arm.critical_path(starts[0])["seconds"]) if starts else 0.0
    return Figures(members, took, float(whole["seconds"]), float(deallocation) + starting, az.counter.reads,
                   az.counter.writes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[20], help="set sizes to measure (2-50)")
    parser.add_argument("--latency-scale", type=float, default=0.05,
                        help="armsim's clock: 1.0 = Azure's real durations (default 0.05)")
    parser.add_argument("--runs", type=int, default=1, help="runs per set size (the median is printed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runbooks-bench-") as home, \
            ArmSim(host="127.0.0.1", latency_scale=args.latency_scale, throttling=False) as arm:
        os.environ["RUNBOOKS_HOME"] = home
        print(f"armsim {arm.endpoint}, latency scale {args.latency_scale:g}, {args.runs} run(s) per set size")
        header = (f"{'members':>7} {'TTR s':>7} {'bound s':>8} {'ratio':>6} {'ordered s':>9} {'ratio':>6}  "
                  f"{'writes/min':>10}  {'reads/min':>10}")
        print(header)
        print("-" * len(header))
        for n in args.members:
            runs = [measure(arm, n) for _ in range(args.runs)]
            f = sorted(runs, key=lambda r: r.ratio)[len(runs) // 2]
            print(f"{n:>7} {f.seconds:>7.3f} {f.bound:>8.3f} {f.ratio:>6.3f} {f.ordered:>9.3f} "
                  f"{f.ordered_ratio:>6.3f}  {f.writes:>4}/{f.min_writes:<5}  {f.reads:>4}/{f.min_reads:<5}")
            if args.runs > 1:
                print(f"{'':>7} ratios: min {min(r.ratio for r in runs):.3f}, median "
                      f"{statistics.median(r.ratio for r in runs):.3f}, max {max(r.ratio for r in runs):.3f}")
        print("TTR: plan + apply + verify, wall clock. bound: armsim's critical-path lower bound for the same "
              "operations; ordered: with the VM's start before the members'. reads/writes: every HTTP attempt of "
              "the client.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
