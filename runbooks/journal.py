"""Run journals and per-VM locks, behind one store interface with two implementations.

A remediation deletes the VM; from then on the run's plan (which carries the full observed VM definition,
its extensions, NICs, disks and the activity-log evidence) is the only copy of what must be recreated, and
its journal is the only record of how far the run got. Where those live decides what survives:

``LocalStore`` (the default)
    A directory, ``RUNBOOKS_HOME`` (default ~/.azure-rca-runbooks); the per-VM lock is a file lock.
    Survives a killed process, not a lost machine, and only excludes runs on the same machine.
``BlobStore`` (``runbooks.store_blob``)
    An Azure Blob Storage container. A generalized VM cannot be tagged, so the lock cannot live on the
    VM: like Terraform's azurerm backend, the per-VM lock is a lease on a blob, renewed by a background
    thread while the run lives and expiring 15-60 s after the runner dies. Who holds it (run id, host,
    pid, user, since when) is in the lock blob's metadata. Any machine with the same store can resume.

Both stores use the same layout::

    runs/<run id>/plan.json       the plan, observation included; written once, before anything is changed
    runs/<run id>/journal.jsonl   one JSON event per line, durable before the call it announces
                                  (local: flushed and fsynced; blob: an append blob, one block per event)
    vms/<vm key>.json             points at the VM's unfinished (crashed or failed) run
    locks/<vm key>...             the per-VM lock

Choosing a store: ``store_from_settings(url, container, credential)`` (what an Automation runbook passes),
or ``store_from_env()``: the ``--store`` flag (a directory, or ``https://ACCOUNT.blob.core.windows.net/
CONTAINER``), else ``RUNBOOKS_STORE_URL`` + ``RUNBOOKS_STORE_CONTAINER``, else ``RUNBOOKS_STORE_CONNECTION_STRING``
+ ``RUNBOOKS_STORE_CONTAINER`` (Azurite; a secret, never printed), else the local directory. The blob store
authenticates with the same azure-identity credential as ARM.

The apply engine calls ``RunJournal.ensure_held()`` (the run's ``RunLock.ensure_held``) before each write,
so a run whose lock was broken or taken over stops with ``LockLost`` before touching Azure again.
No secret is ever written: plans carry secret references only.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from runbooks.errors import JournalError, LockHeld, LockLost, UsageError
from runbooks.plan import Plan

STORE_URL_ENV, STORE_CONTAINER_ENV = "RUNBOOKS_STORE_URL", "RUNBOOKS_STORE_CONTAINER"
STORE_CONNECTION_STRING_ENV = "RUNBOOKS_STORE_CONNECTION_STRING"  # a secret: never printed
STORE_CA_BUNDLE_ENV, STORE_LEASE_ENV = "RUNBOOKS_STORE_CA_BUNDLE", "RUNBOOKS_STORE_LEASE_SECONDS"
CLOSED = ("succeeded", "abandoned")  # run ends after which the VM has no unfinished run
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def home() -> Path:
    return Path(os.environ.get("RUNBOOKS_HOME") or Path.home() / ".azure-rca-runbooks")


def vm_key(vm_id: str) -> str:
    return hashlib.sha256(vm_id.lower().encode()).hexdigest()[:24]


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise UsageError(f"bad run id '{run_id}': letters, digits, '.', '_' and '-' only")
    return run_id


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _user() -> str:
    name = os.environ.get("USER") or os.environ.get("USERNAME")
    if not name:
        with contextlib.suppress(Exception):  # no passwd entry (a container's uid): fall through
            name = getpass.getuser()
    return name or "unknown"


def holder_info(run_id: str) -> dict[str, str]:
    """Who takes a lock: what a refused run is told."""
    return {"run_id": run_id, "host": socket.gethostname(), "pid": str(os.getpid()), "user": _user(),
            "since": _now()}


def describe_holder(holder: Mapping[str, str] | None) -> str:
    if not holder or not holder.get("run_id"):
        return "holder unknown"
    return (f"run {holder['run_id']} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, user "
            f"{holder.get('user', '?')}) since {holder.get('since', '?')}")


PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700  # plans hold the VM model, userData and extension settings


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) a folder only its owner can read; UsageError when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)
    except OSError as e:
        raise UsageError(f"cannot use {path} for run journals: {e.strerror or e} (set RUNBOOKS_HOME or --store to "
                         "a writable folder)") from None
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (a plan holds the VM model, userData and extension settings)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, PRIVATE_FILE)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE), "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- the interface ----------------------------------------------------------------------------------


class RunLock(ABC):
    """A per-VM lock held for a whole run; a second run on the same VM is refused (``LockHeld``), told who
    holds it and since when. ``ensure_held`` raises ``LockLost`` once the lock is no longer this run's."""

    def __init__(self, vm_id: str, run_id: str) -> None:
        self.vm_id, self.run_id = vm_id, run_id

    @abstractmethod
    def acquire(self) -> None: ...

    @abstractmethod
    def release(self) -> None: ...

    @abstractmethod
    def ensure_held(self) -> None: ...

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunJournal(ABC):
    """The durable record of one run: its plan and its events. Written only while the run's lock is held."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.lock: RunLock | None = None

    @abstractmethod
    def plan(self) -> Plan: ...

    @abstractmethod
    def append(self, event: dict[str, Any]) -> None:
        """Record one event durably (it is on disk / committed when this returns)."""

    @abstractmethod
    def _read(self) -> tuple[str | None, str]:
        """The journal's text (None when it has no events yet) and where it lives, for messages."""

    @abstractmethod
    def _update_pointer(self, vm_id: str, status: str) -> None:
        """Drop the VM's run pointer after a success, else record the status in it (if it still exists)."""

    def _line(self, event: dict[str, Any]) -> str:
        return json.dumps({"t": _now(), "run": self.run_id, **event}, default=str) + "\n"

    def events(self) -> list[dict[str, Any]]:
        text, where = self._read()
        if text is None:
            return []
        lines = text.splitlines()
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                if n == len(lines):
                    continue  # a torn last line: the crash happened while writing it
                raise JournalError(f"journal {where} is corrupt at line {n}; move it aside to start over") from None
            if not isinstance(event, dict):
                raise JournalError(f"journal {where} is corrupt at line {n}")
            out.append(event)
        return out

    def done_steps(self) -> set[int]:
        out: set[int] = set()
        for e in self.events():
            if e.get("event") == "steps-reopened":  # an ``always`` step undid earlier ones: a resume redoes them
                out.clear()
                continue
            if e.get("event") != "step-done":
                continue
            index = e.get("index")
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                _, where = self._read()
                raise JournalError(f"journal {where} is damaged: a step-done event has no valid step index "
                                   f"({index!r}); close the run with invoke runs.abandon {self.run_id}")
            out.add(index)
        return out

    def finished_calls(self) -> set[tuple[str, str]]:
        """(operation, lower resource id) of every call this run completed: what ``journal`` goals read."""
        return {(str(e.get("op")), str(e.get("resource", "")).lower()) for e in self.events()
                if e.get("event") == "call-done"}

    def finish(self, status: str) -> None:
        self.append({"event": "run-end", "status": status})
        self._update_pointer(self.plan().vm_id, status)

    def ensure_held(self) -> None:
        """Raise ``LockLost`` unless this run still holds its VM's lock (no-op for a journal opened to read)."""
        if self.lock is not None:
            self.lock.ensure_held()


class Store(ABC):
    """Where journals and locks live."""

    @abstractmethod
    def describe(self) -> str:
        """Where the store is, for messages (never a secret)."""

    @abstractmethod
    def lock(self, vm_id: str, run_id: str) -> RunLock: ...

    @abstractmethod
    def create(self, plan: Plan, lock: RunLock | None = None) -> RunJournal:
        """The run's journal, made on first use (plan written, ``run-start`` recorded), and the VM's pointer
        set to it. ``lock`` is the held lock the journal checks in ``ensure_held``."""

    @abstractmethod
    def open(self, run_id: str) -> RunJournal: ...

    @abstractmethod
    def active_run(self, vm_id: str) -> RunJournal | None:
        """The VM's unfinished run, if any (a crashed or failed one: it must be resumed or cleared)."""

    @abstractmethod
    def run_ids(self) -> list[str]:
        """Every run the store has a plan for."""

    def holder(self, vm_id: str) -> dict[str, str] | None:
        """Who holds the VM's lock right now, when the store can tell without taking it."""
        return None

    def resolve(self, text: str) -> str:
        """A run id from a whole id or a unique prefix of at least 4 characters (as ``runs.list`` shows them)."""
        run_id = check_run_id(text.strip())
        ids = self.run_ids()
        if run_id in ids or len(run_id) < 4:
            return run_id
        found = [i for i in ids if i.startswith(run_id)]
        if len(found) > 1:
            raise UsageError(f"run id prefix '{run_id}' is ambiguous: {', '.join(sorted(found)[:5])}")
        return found[0] if found else run_id


def run_start_event(plan: Plan) -> dict[str, Any]:
    info = holder_info(plan.run_id)
    return {"event": "run-start", "vm": plan.vm_id, "scenario": plan.scenario, "user": info["user"],
            "host": info["host"], "pid": info["pid"]}


# --- the local directory ----------------------------------------------------------------------------


class Journal(RunJournal):
    """A run journal in a local folder ``<root>/runs/<id>/``."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir.name)
        self.dir = run_dir
        self.root = run_dir.parent.parent

    @classmethod
    def create(cls, plan: Plan, root: Path | None = None) -> Journal:
        base = root or home()
        run_dir = base / "runs" / check_run_id(plan.run_id)
        for folder in (base, base / "runs", run_dir):
            private_dir(folder)
        j = cls(run_dir)
        if not (run_dir / "plan.json").exists():
            _write_atomic(run_dir / "plan.json", plan.dumps())
            j.append(run_start_event(plan))
        pointer = base / "vms" / f"{vm_key(plan.vm_id)}.json"
        private_dir(pointer.parent)
        _write_atomic(pointer, json.dumps({"run_id": plan.run_id, "vm_id": plan.vm_id, "status": "running"}))
        return j

    @classmethod
    def open(cls, run_id: str, root: Path | None = None) -> Journal:
        run_dir = (root or home()) / "runs" / check_run_id(run_id)
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
        path = self.dir / "journal.jsonl"
        data = path.read_bytes() if path.exists() else b""
        if data and not data.endswith(b"\n"):  # a crash mid-write left a torn line (never durable): drop it
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE), "ab") as f:
            f.write(self._line(event).encode())
            f.flush()
            os.fsync(f.fileno())

    def _read(self) -> tuple[str | None, str]:
        path = self.dir / "journal.jsonl"
        try:
            return path.read_text(), str(path)
        except FileNotFoundError:
            return None, str(path)
        except OSError as e:
            raise JournalError(f"journal {path} is unreadable: {e}") from None

    def _update_pointer(self, vm_id: str, status: str) -> None:
        pointer = self.root / "vms" / f"{vm_key(vm_id)}.json"
        if status in CLOSED and pointer.exists():
            pointer.unlink()
        elif pointer.exists():
            _write_atomic(pointer, json.dumps({"run_id": self.run_id, "vm_id": vm_id, "status": status}))


def active_run(vm_id: str, root: Path | None = None) -> Journal | None:
    """The unfinished run of this VM in a local directory, if any."""
    pointer = (root or home()) / "vms" / f"{vm_key(vm_id)}.json"
    if not pointer.exists():
        return None
    try:
        data = json.loads(pointer.read_text())
        return Journal.open(str(data["run_id"]), root)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JournalError(f"run pointer {pointer} is corrupt ({e}); remove it to start over") from None


class VmLock(RunLock):
    """The local per-VM lock: a file lock, with who holds it in a file beside it."""

    def __init__(self, vm_id: str, run_id: str, root: Path | None = None) -> None:
        super().__init__(vm_id, run_id)
        locks = (root or home()) / "locks"
        private_dir(root or home())
        private_dir(locks)
        key = vm_key(vm_id)
        self.path, self.info = locks / f"{key}.lock", locks / f"{key}.holder.json"
        self.lock = FileLock(str(self.path), mode=PRIVATE_FILE)

    def acquire(self) -> None:
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            holder = None
            with contextlib.suppress(OSError, ValueError):
                holder = json.loads(self.info.read_text())
            raise LockHeld(f"another remediation of {self.vm_id} is running: "
                           f"{describe_holder(holder if isinstance(holder, dict) else None)}") from None
        _write_atomic(self.info, json.dumps(holder_info(self.run_id)))

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.info.unlink()
        self.lock.release()

    def ensure_held(self) -> None:
        if not self.lock.is_locked or not self.path.exists():
            raise LockLost(f"run {self.run_id} no longer holds the lock of {self.vm_id} ({self.path}); "
                           "stopped before its next write")

    def __enter__(self) -> VmLock:
        self.acquire()
        return self


class LocalStore(Store):
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or home()

    def describe(self) -> str:
        return f"local directory {self.root}"

    def lock(self, vm_id: str, run_id: str) -> VmLock:
        return VmLock(vm_id, run_id, self.root)

    def create(self, plan: Plan, lock: RunLock | None = None) -> Journal:
        journal = Journal.create(plan, self.root)
        journal.lock = lock
        return journal

    def open(self, run_id: str) -> Journal:
        return Journal.open(run_id, self.root)

    def active_run(self, vm_id: str) -> Journal | None:
        return active_run(vm_id, self.root)

    def run_ids(self) -> list[str]:
        runs = self.root / "runs"
        if not runs.is_dir():
            return []
        return sorted(p.name for p in runs.iterdir() if (p / "plan.json").is_file())


# --- choosing a store -------------------------------------------------------------------------------

MIN_LEASE_SECONDS, MAX_LEASE_SECONDS, DEFAULT_LEASE_SECONDS = 15, 60, 30


def lease_seconds(value: str | int | None = None) -> int:
    """The blob lease duration: ``value``, else ``RUNBOOKS_STORE_LEASE_SECONDS``, else 30 (Azure allows 15-60)."""
    raw = value if value not in (None, "") else os.environ.get(STORE_LEASE_ENV) or DEFAULT_LEASE_SECONDS
    try:
        seconds = int(raw)
    except (TypeError, ValueError):
        raise UsageError(f"lease duration must be a whole number of seconds (got {raw!r})") from None
    if not MIN_LEASE_SECONDS <= seconds <= MAX_LEASE_SECONDS:
        raise UsageError(f"lease duration must be {MIN_LEASE_SECONDS}-{MAX_LEASE_SECONDS} seconds (got {seconds}): "
                         "Azure's limits for a lease that expires when its runner dies")
    return seconds


def store_from_settings(url: str | None, container: str | None, credential: Any = None, *,
                        connection_string: str | None = None, ca_bundle: str | None = None,
                        lease: int | None = None, root: Path | None = None) -> Store:
    """The store for these settings: a blob container when ``url`` (the storage account's blob endpoint,
    authenticated with ``credential``, by default DefaultAzureCredential) or ``connection_string`` is
    given with ``container``; else the local directory ``root`` (default ``RUNBOOKS_HOME``)."""
    url, container, connection_string = (url or "").strip(), (container or "").strip(), connection_string or ""
    if not url and not connection_string:
        if container:
            raise UsageError(f"store container '{container}' given without a storage account URL "
                             f"(--store https://ACCOUNT.blob.core.windows.net/{container} or {STORE_URL_ENV})")
        return LocalStore(root)
    if not container:
        raise UsageError(f"blob store without a container: set {STORE_CONTAINER_ENV} (or pass "
                         "--store https://ACCOUNT.blob.core.windows.net/CONTAINER)")
    from runbooks.store_blob import BlobStore

    return BlobStore.connect(url or None, container, credential, connection_string=connection_string or None,
                             ca_bundle=ca_bundle or None, lease=lease_seconds(lease))


def split_store_url(value: str) -> tuple[str, str]:
    """``https://ACCOUNT.blob.core.windows.net/CONTAINER`` → (account URL, container). The container is the
    last path segment, so an emulator's path-style ``http://127.0.0.1:10000/ACCOUNT/CONTAINER`` works too."""
    if "?" in value or "#" in value:  # a SAS token: never echoed, and not a way to authenticate the store
        raise UsageError("--store: give the container URL without a query string (the store authenticates with "
                         "the Azure credential; a SAS token is not accepted and is not shown)")
    base, _, container = value.strip().rstrip("/").rpartition("/")
    if "://" not in base or not container or base.endswith(":/"):
        raise UsageError(f"--store {value}: expected https://ACCOUNT.blob.core.windows.net/CONTAINER or a directory")
    return base, container


def store_from_env(flag: str = "", credential: Any = None) -> Store:
    """The store named by ``--store`` (a directory, or a blob container URL), else by the environment."""
    flag = flag.strip()
    ca_bundle = os.environ.get(STORE_CA_BUNDLE_ENV)
    if flag and "://" in flag:
        url, container = split_store_url(flag)
        return store_from_settings(url, container, credential, ca_bundle=ca_bundle)
    if flag:
        path = Path(flag).expanduser()
        if path.exists() and not path.is_dir():
            raise UsageError(f"--store {flag}: not a folder (a directory for the local store, or a blob container "
                             "URL https://ACCOUNT.blob.core.windows.net/CONTAINER)")
        return LocalStore(path)
    return store_from_settings(os.environ.get(STORE_URL_ENV), os.environ.get(STORE_CONTAINER_ENV), credential,
                               connection_string=os.environ.get(STORE_CONNECTION_STRING_ENV), ca_bundle=ca_bundle)
