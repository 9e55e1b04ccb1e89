"""Run journals and per-VM locks, in a local directory (``RUNBOOKS_HOME``, default ~/.azure-rca-runbooks).

Each run has an id and a folder ``runs/<id>/`` holding the plan (``plan.json``, which includes the full
observed VM definition — the only copy once the VM is deleted) and ``journal.jsonl``: one event per line,
each flushed and fsynced before the call it announces, so a crash at any point leaves an exact record.
``vms/<key>.json`` points at a VM's unfinished run; ``locks/<key>.lock`` stops two runs on one VM.
No secret is ever written: plans carry secret references only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from runbooks.errors import JournalError, LockHeld
from runbooks.plan import Plan


def home() -> Path:
    return Path(os.environ.get("RUNBOOKS_HOME") or Path.home() / ".azure-rca-runbooks")


def vm_key(vm_id: str) -> str:
    return hashlib.sha256(vm_id.lower().encode()).hexdigest()[:24]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Journal:
    """The durable record of one run."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.run_id = run_dir.name

    @classmethod
    def create(cls, plan: Plan, root: Path | None = None) -> Journal:
        base = (root or home())
        run_dir = base / "runs" / plan.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        j = cls(run_dir)
        if not (run_dir / "plan.json").exists():
            _write_atomic(run_dir / "plan.json", plan.dumps())
            j.append({"event": "run-start", "vm": plan.vm_id, "scenario": plan.scenario, "user": _user()})
        pointer = base / "vms" / f"{vm_key(plan.vm_id)}.json"
        pointer.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(pointer, json.dumps({"run_id": plan.run_id, "vm_id": plan.vm_id, "status": "running"}))
        return j

    @classmethod
    def open(cls, run_id: str, root: Path | None = None) -> Journal:
        run_dir = (root or home()) / "runs" / run_id
        if not (run_dir / "plan.json").is_file():
            raise JournalError(f"no journal for run {run_id} under {run_dir.parent}")
        return cls(run_dir)

    def plan(self) -> Plan:
        path = self.dir / "plan.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise JournalError(f"journal {path} is unreadable: {e}") from None
        return Plan.from_dict(data, source=str(path))

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps({"t": _now(), "run": self.run_id, **event}, default=str)
        with open(self.dir / "journal.jsonl", "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def events(self) -> list[dict[str, Any]]:
        path = self.dir / "journal.jsonl"
        if not path.exists():
            return []
        out = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                if n == len(path.read_text().splitlines()):
                    continue  # a torn last line: the crash happened while writing it
                raise JournalError(f"journal {path} is corrupt at line {n}; move it aside to start over") from None
            if not isinstance(event, dict):
                raise JournalError(f"journal {path} is corrupt at line {n}")
            out.append(event)
        return out

    def done_steps(self) -> set[int]:
        return {int(e["index"]) for e in self.events() if e.get("event") == "step-done"}

    def finish(self, status: str, root: Path | None = None) -> None:
        self.append({"event": "run-end", "status": status})
        plan = self.plan()
        pointer = (root or home()) / "vms" / f"{vm_key(plan.vm_id)}.json"
        if status == "succeeded" and pointer.exists():
            pointer.unlink()
        elif pointer.exists():
            _write_atomic(pointer, json.dumps({"run_id": self.run_id, "vm_id": plan.vm_id, "status": status}))


def active_run(vm_id: str, root: Path | None = None) -> Journal | None:
    """The unfinished run of this VM, if any (a crashed or failed one: it must be resumed or cleared)."""
    pointer = (root or home()) / "vms" / f"{vm_key(vm_id)}.json"
    if not pointer.exists():
        return None
    try:
        data = json.loads(pointer.read_text())
        return Journal.open(str(data["run_id"]), root)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JournalError(f"run pointer {pointer} is corrupt ({e}); remove it to start over") from None


class VmLock:
    """A per-VM lock held for the whole run; a second run on the same VM is refused, told who holds it."""

    def __init__(self, vm_id: str, run_id: str, root: Path | None = None) -> None:
        locks = (root or home()) / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        key = vm_key(vm_id)
        self.path, self.info = locks / f"{key}.lock", locks / f"{key}.holder.json"
        self.vm_id, self.run_id = vm_id, run_id
        self.lock = FileLock(str(self.path))

    def __enter__(self) -> VmLock:
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            holder = "unknown"
            try:
                h = json.loads(self.info.read_text())
                holder = f"run {h.get('run_id')} (pid {h.get('pid')} on {h.get('host')}) since {h.get('since')}"
            except (OSError, ValueError):
                pass
            raise LockHeld(f"another remediation of {self.vm_id} is running: {holder}") from None
        _write_atomic(self.info, json.dumps({"run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(),
                                             "since": _now()}))
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.info.unlink()
        self.lock.release()


def _user() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
