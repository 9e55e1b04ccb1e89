"""Live progress on a real terminal (issue 14): the CLI in a pseudo-terminal (pexpect), its screen emulated (pyte).
An interactive remediation in confirm mode (the prompts answered through the pty) and ``invoke demo`` for one case
each show a live status line per running operation (spinner, what, elapsed time moving, deadline, last state), one
✓ line per operation when it ends, and leave no live line behind on the screen."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pexpect
import pyte
import pytest
from remediation_helpers import REPO, Rig

from runbooks.text import WIDTH

BIN = Path(sys.executable).parent


def _can_open_a_pty() -> bool:
    try:
        for fd in os.openpty():
            os.close(fd)
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _can_open_a_pty(), reason="this machine cannot open a pseudo-terminal")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLUMNS = 160  # wider than any progress line may be: a line over 100 columns would show


def _terminal_env(base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    return {**env, "TERM": "xterm-256color"}


def _run(argv: list[str], env: dict[str, str], answer: str = "y", timeout: float = 180) -> tuple[str, int, list[str]]:
    """Run ``argv`` in a pty, answering every [y/N] question; (its output, exit status, the questions asked)."""
    out = io.StringIO()
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(REPO), env=env, encoding="utf-8", timeout=timeout,
                          dimensions=(40, COLUMNS))
    child.logfile_read = out
    asked = []
    while child.expect([r"\[y/N\] ", pexpect.EOF]) == 0:
        asked.append(ANSI.sub("", child.before.splitlines()[-1] if child.before.strip() else ""))
        child.sendline(answer)
    child.close()
    return out.getvalue(), int(child.exitstatus if child.exitstatus is not None else -1), asked


def _frames(raw: str, what: str) -> list[str]:
    """The live status lines of operation ``what`` drawn during the run (each redraw is one)."""
    text = ANSI.sub("\n", raw.replace("\r", "\n"))
    return [line for line in text.split("\n") if line[:1] in SPINNER and line[2:].startswith(what + "  ")]


def _elapsed(frame: str) -> float:
    m = re.search(r"  (\d+(?:\.\d)?)s", frame)
    assert m, frame
    return float(m.group(1))


def _screen(raw: str) -> list[str]:
    """The terminal's final screen (tall enough that nothing scrolls off), one string per non-empty line."""
    screen = pyte.Screen(COLUMNS, 2000)
    pyte.Stream(screen).feed(raw.replace("\r\n", "\n").replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display if line.strip()]


def _assert_live_then_clean(raw: str, what: str) -> list[str]:
    frames = _frames(raw, what)
    assert frames, f"no live line for {what}: {ANSI.sub('', raw)[-3000:]}"
    assert len({_elapsed(f) for f in frames}) >= 2, frames  # the elapsed time moves while it runs
    assert all(len(f) <= WIDTH for f in frames), max(frames, key=len)
    screen = _screen(raw)
    assert not [line for line in screen if line[:1] in SPINNER], screen  # no live line left behind
    ended = [line for line in screen if line.lstrip().startswith(f"✓ {what} (")]
    assert ended, screen
    wide = [line for line in screen if len(line) > WIDTH]  # the whole session, on a terminal wider than that
    assert wide == [], "\n".join(wide)
    return screen


def test_an_interactive_remediation_shows_each_wait_live_and_asks_on_a_clean_line(rig: Rig) -> None:
    rig.arm.seed("redeploy-vm")
    rig.arm.world.config.latency_scale = 0.02  # a redeploy takes about a second: several redraws
    raw, status, asked = _run([str(BIN / "rca-runbooks"), "remediate", "--vm", "rg-redeploy/web-01"],
                              _terminal_env(rig.env(RUNBOOKS_POLL_INTERVAL_S="0.1")))
    assert status == 0, ANSI.sub("", raw)[-3000:]
    assert [q.split("?")[0].split(" (")[0] for q in asked] == [
        "Apply this plan to rg-redeploy/web-01", "Step 2 is destructive: redeploy VM web-01 to a new host. Proceed"]
    frames = _frames(raw, "redeploy VM web-01")
    assert any(f.endswith("InProgress") for f in frames), frames  # the poller's last status
    verify = _frames(raw, "verify")
    assert verify and all(re.search(r"  \d+(\.\d)?s / 900s", f) for f in verify), verify  # elapsed / deadline
    screen = _assert_live_then_clean(raw, "redeploy VM web-01")
    question = [line for line in screen if line.startswith("Step 2 is destructive")]
    assert question and question[0].endswith("Proceed? [y/N] y"), screen  # asked on its own line, not under a live one
    assert any(line.strip().startswith("✓ verify: every condition holds (") for line in screen), screen
    assert any(line.startswith("Remediated rg-redeploy/web-01 (redeploy)") for line in screen), screen


def test_the_demo_shows_live_progress_on_a_terminal() -> None:
    env = _terminal_env({k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))})
    raw, status, asked = _run([str(BIN / "invoke"), "demo", "--latency-scale", "0.02", "--only",
                               "generalized-without-sysprep"], env)
    assert status == 0 and not asked, ANSI.sub("", raw)[-3000:]
    screen = _assert_live_then_clean(raw, "create VM api-01 attaching OS disk api-01_OsDisk")
    # the agent may be Ready at the first look (no frame drawn then: tests/test_demo.py checks the scaled
    # deadline in the plain lines); any frame drawn shows it too
    assert all("/ 30s" in f for f in _frames(raw, "verify")), _frames(raw, "verify")
    assert any(line.startswith("    ✓ verify: every condition holds (") for line in screen), screen
    assert screen[-1].startswith("=== done: every VM is fixed"), screen[-5:]


def test_a_sweep_shows_a_row_per_vm_in_flight_and_a_total_that_ends_complete(rig: Rig) -> None:
    rig.arm.seed("fleet", vms=8, resource_groups=2, generalized_fraction=0.5, seed=4)
    rig.arm.world.config.latency_scale = 0.02
    raw, status, _ = _run([str(BIN / "rca-runbooks"), "sweep", "--remediate", "--prefer", "from-os-disk",
                           "--max-concurrency", "2"], _terminal_env(rig.env(RUNBOOKS_POLL_INTERVAL_S="0.1")))
    screen = _screen(raw)
    assert status == 0, "\n".join(screen[-30:])
    done = [line for line in screen if re.match(r"^rg-\S+/\S+: remediated", line)]
    assert len(done) >= 2 and all(len(line) <= WIDTH for line in done), screen
    text = ANSI.sub("", raw.replace("\r", "\n"))
    rows = {m.group(1) for m in re.finditer(r"^[" + SPINNER + r"]   (rg-\S+/\S+): ", text, re.MULTILINE)}
    assert rows == {line.split(":")[0] for line in done}, rows  # each VM had its row while it ran
    totals = [line for line in screen if "VMs done" in line]
    assert len(totals) == 1 and re.search(rf"\b{len(done)}/{len(done)}\b", totals[0]), screen  # never cut off
    assert all(len(line) <= WIDTH for line in screen if line.startswith(("  VMs done", "  listed"))), screen
    assert not [line for line in screen if line[:1] in SPINNER], screen  # no row left spinning
