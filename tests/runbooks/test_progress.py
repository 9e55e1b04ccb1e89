"""Progress an operator can read (issue 14): the plain renderer (events in, whole lines out, ≤ 100 columns, never
mixed across threads), scaled timeouts, the sweep's plain lines, and a remediation through the real SDK whose every
wait is reported as an operation that starts, is polled with the state Azure answered, and ends."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import pytest
from remediation_helpers import Rig, seed

from runbooks.apply import Hooks
from runbooks.errors import UsageError
from runbooks.progress import Operation, PlainTracker, Tracker, scaled, stream_writer
from runbooks.sweep import SweepEvent, console_progress
from runbooks.text import WIDTH, cut


def in_parallel(fn: Callable[[int], None], n: int) -> None:
    """``fn(0)`` … ``fn(n - 1)`` at once, each in its own thread; returns when all have."""
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_plain_lines_say_what_is_waited_for_its_deadline_the_state_and_how_it_ended() -> None:
    lines: list[str] = []
    tracker = PlainTracker(lines.append, every_s=60)
    create = tracker.start("create VM api-01")
    verify = tracker.start("verify", timeout_s=900)
    assert lines == ["    → create VM api-01 (waiting until ARM ends it)", "    → verify (waiting up to 900s)"]
    create.poll("InProgress")  # what a started operation is taken to be: not news within every_s
    create.poll("InProgress")
    verify.poll("agent-ready: VM agent status: Not Ready")
    verify.poll("running: PowerState/starting")  # a new state is always said
    create.poll("Deleting")
    assert lines[2:] == ["      … verify: still running (0s of 900s): agent-ready: VM agent status: Not Ready",
                         "      … verify: still running (0s of 900s): running: PowerState/starting",
                         "      … create VM api-01: still running (0s): Deleting"]
    create.end()
    verify.end(False, "VerifyFailed")
    verify.end(True)  # an operation ends once
    assert lines[5].startswith("    ✓ create VM api-01 (") and lines[5].endswith("s)")
    assert lines[6].startswith("    ✗ verify: VerifyFailed (after ")
    assert len(lines) == 7


def test_an_unchanged_state_is_said_again_every_progress_period() -> None:
    lines: list[str] = []
    op = PlainTracker(lines.append, every_s=0.05).start("delete VM web-01")
    op.poll("InProgress")
    op.poll("InProgress")
    time.sleep(0.08)
    op.poll("InProgress")
    op.poll("InProgress")
    time.sleep(0.08)
    op.poll("InProgress")
    assert lines[1:] == ["      … delete VM web-01: still running (0s): InProgress"] * 2, lines


def test_every_progress_line_fits_100_columns_on_one_line() -> None:
    lines: list[str] = []
    tracker = PlainTracker(lines.append, every_s=0)
    long = "create VM " + "x" * 150
    op = tracker.start(long, timeout_s=900)
    op.poll("conditions: " + "; ".join(f"condition-{i} does not hold\nyet" for i in range(20)))
    op.end(False, "Conflict: " + "y" * 300)
    assert len(lines) == 3
    assert all(len(line) <= WIDTH and "\n" not in line for line in lines), lines
    assert all(line.endswith("…") for line in lines)
    assert cut("short") == "short" and len(cut("z" * 101)) == WIDTH


def test_an_operation_block_that_raises_ends_failed_with_the_first_line_of_the_error() -> None:
    lines: list[str] = []
    tracker = PlainTracker(lines.append)
    with pytest.raises(RuntimeError), tracker.operation("verify", 30):
        raise RuntimeError("VM rg/web-01 does not exist\nWays back: …")
    assert lines[-1].startswith("    ✗ verify: VM rg/web-01 does not exist (after ")


def test_parallel_waits_never_mix_their_lines() -> None:
    """Waves run calls in parallel threads: each line is written whole, even to a stream that takes it one
    character at a time (as a print() would in two writes)."""
    chars: list[str] = []

    def slow_write(text: str) -> None:
        for ch in text + "\n":
            chars.append(ch)
            time.sleep(0)  # let another thread in, if it could get in

    tracker = PlainTracker(slow_write, every_s=0)

    def work(n: int) -> None:
        for i in range(15):
            op = tracker.start(f"create disk d-{n}-{i}")
            op.poll(f"InProgress {n}")
            op.end()

    in_parallel(work, 6)
    lines = "".join(chars).splitlines()
    assert len(lines) == 6 * 15 * 3
    for line in lines:
        name = line.split("create disk ", 1)[1].split(" ", 1)[0].rstrip(":")
        n = name.split("-")[1]
        assert line in (f"    → create disk {name} (waiting until ARM ends it)",
                        f"      … create disk {name}: still running (0s): InProgress {n}") \
            or line.startswith(f"    ✓ create disk {name} ("), line


def test_stream_writer_writes_a_line_and_its_newline_at_once() -> None:
    calls: list[str] = []

    class Stream(io.StringIO):
        def write(self, s: str) -> int:
            calls.append(s)
            return len(s)

    stream_writer(Stream())("    → start VM web-01 (waiting until ARM ends it)")
    assert calls == ["    → start VM web-01 (waiting until ARM ends it)\n"]


def test_timeouts_that_model_azure_durations_scale_with_the_demo_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOKS_TIMEOUT_SCALE", raising=False)
    assert scaled(900) == 900
    monkeypatch.setenv("RUNBOOKS_TIMEOUT_SCALE", "0.1")
    assert scaled(900) == 90
    monkeypatch.setenv("RUNBOOKS_TIMEOUT_SCALE", "0.02")
    assert scaled(900) == 30  # 18 s would be less than the toolkit's own overhead on a busy machine
    assert scaled(10) == 10  # never longer than unscaled
    for bad in ("0", "-1", "fast"):
        monkeypatch.setenv("RUNBOOKS_TIMEOUT_SCALE", bad)
        with pytest.raises(UsageError, match="RUNBOOKS_TIMEOUT_SCALE must be a number greater than 0"):
            scaled(900)


def test_hooks_without_a_tracker_report_waits_as_plain_lines_through_progress() -> None:
    lines: list[str] = []
    hooks = Hooks(confirm=lambda q: True, progress=lines.append)
    assert isinstance(hooks.ops, PlainTracker)
    hooks.ops.start("start VM web-01").end()
    assert lines[0] == "    → start VM web-01 (waiting until ARM ends it)" and lines[1].startswith("    ✓ start VM")


def test_the_sweep_without_a_terminal_writes_whole_lines_each_prefixed_by_its_vm_never_mixed() -> None:
    out = io.StringIO()
    sent: dict[str, list[str]] = {}
    with console_progress(out) as show:
        def vm(n: int) -> None:
            ref = f"rg-sweep/vm-{n:02d}"
            messages = ["started", *(f"→ create VM vm-{n:02d} step {i} " + "detail " * (i * 4) for i in range(10)),
                        "failed: " + "Conflict " * 40]
            sent[ref] = [" ".join(m.split()) for m in messages]
            show(SweepEvent("start", messages[0], vm=ref, candidates=4))
            for m in messages[1:-1]:
                show(SweepEvent("step", m, vm=ref))
            show(SweepEvent("done", messages[-1], vm=ref, candidates=4, finished=n))

        in_parallel(vm, 4)
        show(SweepEvent("stop", "1 remediation(s) failed (--max-errors 1): no new one was started"))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    assert lines[-1] == "1 remediation(s) failed (--max-errors 1): no new one was started"
    events: list[tuple[str, str]] = []  # (vm, text): a continuation line must follow a line of the same VM
    for line in lines[:-1]:
        ref, _, text = line.partition(": ")
        assert ref in sent, line
        if text.startswith("  "):
            assert events and events[-1][0] == ref, line
            events[-1] = (ref, f"{events[-1][1]} {text.strip()}")
        else:
            events.append((ref, text))
    assert any(len(text) > WIDTH for _, text in events)  # long events were wrapped, not cut
    assert {ref: [text for r, text in events if r == ref] for ref in sent} == sent


class Recording(Tracker):
    """Every event the engine reports, as data."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float | None, str]] = []
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        self.lines.append(text)

    def started(self, op: Operation) -> None:
        with self.lock:
            self.events.append(("start", op.what, op.timeout_s, ""))

    def polled(self, op: Operation, state: str) -> None:
        with self.lock:
            self.events.append(("poll", op.what, op.timeout_s, state))

    def ended(self, op: Operation, ok: bool, note: str) -> None:
        with self.lock:
            self.events.append(("end" if ok else "failed", op.what, op.timeout_s, note))


def test_a_remediation_reports_each_wait_with_the_state_azure_answered(rig: Rig,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real SDK at 5% of Azure's durations: each call is an operation that starts, is polled with
    its poller's status (no extra ARM read) and ends; verification's timeout is the playbook's, scaled."""
    monkeypatch.setenv("RUNBOOKS_TIMEOUT_SCALE", "0.1")
    seed(rig, "rg-demo/api-01")
    rig.arm.world.config.latency_scale = 0.05
    recording = Recording()
    hooks = rig.hooks()
    hooks.tracker = recording
    from runbooks.observe import VmRef
    from runbooks.remediate import plan_remediation, remediate

    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/api-01"), "from-os-disk")
    remediate(az, plan, hooks, yes=True)
    started = [what for kind, what, _, _ in recording.events if kind == "start"]
    ended = [what for kind, what, _, _ in recording.events if kind == "end"]
    assert sorted(started) == sorted(ended)  # every wait ended, none failed
    assert any(w.startswith("create VM api-01") for w in started), started
    assert "verify" in started
    assert {t for kind, what, t, _ in recording.events if what == "verify"} == {90.0}  # 900 s x 0.1
    create_polls = {s for kind, what, _, s in recording.events if kind == "poll" and what.startswith("create VM")}
    assert "InProgress" in create_polls and create_polls <= {"InProgress", "Succeeded"}, create_polls
    assert not any("still running" in line for line in rig.progress)  # waits went to the tracker, not to progress


def test_an_automation_job_streams_each_wait_as_whole_plain_lines(rig: Rig, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """No terminal in an Automation sandbox: the job's Output stream gets one line per event, ≤ 100 columns."""
    from runbooks.automation.entry import remediate_main

    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOKS_PROGRESS_EVERY_S", "0.2")
    rig.arm.seed("generalized-without-sysprep")
    rig.arm.world.config.latency_scale = 0.05
    code = remediate_main(['{"vm": "rg-demo/api-01", "scenario": "from-os-disk", "apply": true, '
                           '"allow_local_store": true}'])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    waits = [line for line in lines if line.lstrip().startswith(("→ ", "… ", "✓ ", "✗ "))]
    assert any(line.startswith("    → create VM api-01") and line.endswith("(waiting until ARM ends it)")
               for line in waits), waits
    assert any(line.startswith("      … create VM api-01") and "still running" in line for line in waits), waits
    assert any(line.startswith("    ✓ verify: every condition holds (") for line in waits), waits
    assert all(len(line) <= WIDTH for line in waits), max(waits, key=len)


def test_an_automation_jobs_records_from_parallel_threads_never_mix() -> None:
    from runbooks.automation.entry import JobOutput

    chars: list[str] = []

    class OneCharAtATime(io.StringIO):
        def write(self, s: str) -> int:
            for ch in s:
                chars.append(ch)
                time.sleep(0)
            return len(s)

    out = JobOutput(OneCharAtATime())
    expected = {f"VERBOSE: rg-sweep/vm-{n:02d}: step {i}" for n in range(6) for i in range(20)}

    def vm(n: int) -> None:
        for i in range(20):
            out.verbose(f"rg-sweep/vm-{n:02d}: step {i}")

    in_parallel(vm, 6)
    lines = "".join(chars).splitlines()
    assert len(lines) == len(expected) and set(lines) == expected


@pytest.mark.parametrize("setting", [{"RUNBOOKS_TIMEOUT_SCALE": "0"}, {"RUNBOOKS_TIMEOUT_SCALE": "fast"},
                                     {"RUNBOOKS_PROGRESS_EVERY_S": "-1"}])
def test_a_bad_progress_or_timeout_setting_is_refused_before_the_first_write(rig: Rig, setting: dict[str, str]) -> None:
    """Not at verification, after every destructive step: one line, exit 2, nothing written in Azure."""
    rig.arm.seed("redeploy-vm")
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", "rg-redeploy/web-01", "--yes", env=rig.env(**setting))
    assert done.returncode == 2, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {next(iter(setting))} must be a number"), errors
    assert rig.arm.writes(mark) == []


def test_a_start_cut_short_by_a_lost_lock_or_ctrl_c_ends_its_wait(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything but ARM's refusal while a call starts (KeyboardInterrupt here) still ends the operation shown."""
    rig.arm.seed("redeploy-vm")
    recording = Recording()
    hooks = rig.hooks()
    hooks.tracker = recording
    from runbooks import apply
    from runbooks.observe import VmRef
    from runbooks.remediate import plan_remediation, remediate

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-redeploy/web-01"), None)
    monkeypatch.setattr(apply, "start_call", interrupted)
    with pytest.raises(KeyboardInterrupt):
        remediate(az, plan, hooks, yes=True)
    started = [what for kind, what, _, _ in recording.events if kind == "start"]
    failed = [(what, note) for kind, what, _, note in recording.events if kind == "failed"]
    assert started and [w for w, _ in failed] == started and all(n == "the run stopped" for _, n in failed)


def test_a_long_expected_wait_in_verification_still_says_its_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification may wait as long as the agent took last time: in slices of RUNBOOKS_PROGRESS_EVERY_S, each
    followed by its state, never one silent sleep."""
    from runbooks.verify import _sleep_saying

    monkeypatch.setenv("RUNBOOKS_PROGRESS_EVERY_S", "0.05")
    lines: list[str] = []
    op = PlainTracker(lines.append, every_s=0.05).start("verify", timeout_s=900)
    _sleep_saying(op, "agent-ready: VM agent status: Not Ready", 0.26)
    said = [line for line in lines if "still running" in line]
    assert len(said) >= 4 and all(line.endswith("agent-ready: VM agent status: Not Ready") for line in said), lines
