"""The README's first command, ``invoke demo``, run as the user runs it (a subprocess: importing the task
collection would change this process's SIGPIPE handling) at a fast clock: a VM of every playbook is diagnosed,
dry-run with zero writes, remediated and verified."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from runbooks.playbook import load_playbooks

REPO = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def test_the_demo_fixes_a_vm_of_every_playbook() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
    done = subprocess.run([INVOKE, "demo", "--latency-scale", "0.005"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    cases = len(re.findall(r"^=== \S+ — remediate --yes =", out, re.MULTILINE))
    shown = set(re.findall(r"^Playbook ([a-z0-9-]+):", out, re.MULTILINE))
    assert shown == set(load_playbooks())  # every playbook, none missing
    explained = len(re.findall(r"^=== \S+ — remediate --yes \(nothing to repair", out, re.MULTILINE))
    explaining = {pb.id for pb in load_playbooks().values() if pb.explains}
    assert explained == len(explaining & shown) and out.count("It explains; nothing was changed.") == explained
    assert out.count("armsim's request log: 0 writes.") == explained
    assert cases >= len(shown - explaining) and out.count("0 writes during the dry run") == cases
    assert len(re.findall(r"^Remediated \S+ \(", out, re.MULTILINE)) == cases
    assert out.count("✓ verify: every condition holds") == cases
    # verification's wait for the agent models Azure's 900 s: at the demo's clock it is never below 30 s
    assert out.count("→ verify (waiting up to 30s)") == cases
    assert "then verify (up to 30s)" in out and "then verify (up to 900s)" not in out  # the plan says the same
    assert out.rstrip().splitlines()[-1].startswith("=== done: every VM is fixed")
    # an operator's output (issue 14): every line within 100 columns, calls by short path, the diff by changed key,
    # and the bench's figures left to bench/
    wide = [line for line in out.splitlines() if len(line) > 100]
    assert wide == [], "\n".join(wide)
    assert "PUT rg-demo/…/snapshots/app-01_OsDisk-" in out and "PUT /subscriptions/" not in out
    assert "properties.storageProfile.dataDisks[lun 0].createOption: Empty → Attach" in out
    assert "critical-path" not in out and "(ratio " not in out and "lower bound" not in out
    assert len(re.findall(r"^Recovered in \d+\.\d s; \d+ ARM reads, \d+ writes\.$", out, re.MULTILINE)) == cases
    assert " all fit " not in out and ".." not in out.replace("...", "")
