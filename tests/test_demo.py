"""The README's first command, ``invoke demo``, run in-process at a fast clock: a VM of every playbook is
diagnosed, dry-run with zero writes, remediated and verified."""

from __future__ import annotations

import re

import pytest

from runbooks.playbook import load_playbooks
from tasks.demo import CASES, run_demo


def test_the_demo_fixes_a_vm_of_every_playbook(capsys: pytest.CaptureFixture[str]) -> None:
    run_demo(latency_scale=0.005)
    out = capsys.readouterr().out
    shown = set(re.findall(r"^Playbook ([a-z0-9-]+):", out, re.MULTILINE))
    assert shown == set(load_playbooks())  # every playbook, none missing
    assert out.count("0 writes during the dry run") == len(CASES)
    assert len(re.findall(r"^Remediated \S+ \(", out, re.MULTILINE)) == len(CASES)
    assert out.count("✓ every condition holds") == len(CASES)
    assert out.rstrip().splitlines()[-1].startswith("=== done: every VM is fixed")
