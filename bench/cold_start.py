"""Cold start of the Automation runbook (prints figures; asserts nothing).

A fresh Python process, as an Automation job starts: no bytecode cache for the project (``PYTHONPYCACHEPREFIX``
points at an empty folder; the SDK's wheels keep the bytecode pip compiled at install, as Automation's do), then
import the runbook entry, authenticate with the managed identity (armsim's endpoint, as the sandbox's) and make
the first ARM call (a VM GET). armsim runs in its own process; each phase is timed inside the child.

    python bench/cold_start.py [--runs 5]

Goal (the operator's-tool issue): import + auth + first call <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, time
t0 = time.perf_counter()
from runbooks.automation.entry import RemediateParameters, connect
t1 = time.perf_counter()
az = connect(RemediateParameters(vm="rg-web/web-01"))
az.credential.get_token("https://management.azure.com/.default")
t2 = time.perf_counter()
az.compute.virtual_machines.get("rg-web", "web-01")
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "auth": t2 - t1, "first_call": t3 - t2, "total": t3 - t0}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes to time (the median is printed)")
    args = parser.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--scenario", "healthy", "--no-throttling"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
        env.update(RUNBOOKS_ARM_ENDPOINT=info["endpoint"], RUNBOOKS_CA_BUNDLE=info["ca_bundle"],
                   AZURE_SUBSCRIPTION_ID=info["subscription_id"], IDENTITY_ENDPOINT=info["identity_endpoint"],
                   IDENTITY_HEADER=info["identity_header"], REQUESTS_CA_BUNDLE=info["ca_bundle"])
        figures = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="cold-start-pyc-") as pyc:
                out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, text=True, capture_output=True,
                                     env={**env, "PYTHONPYCACHEPREFIX": pyc}, check=True)
            figures.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cold start of the Automation runbook, median of {args.runs} fresh processes (seconds):")
    for phase in ("import", "auth", "first_call", "total"):
        values = [f[phase] for f in figures]
        print(f"  {phase:<11} {statistics.median(values):6.3f}   (min {min(values):.3f}, max {max(values):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
