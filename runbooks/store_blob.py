"""The blob store: run journals and per-VM locks in an Azure Blob Storage container.

Layout and the reasons for it are in ``runbooks.journal``'s docstring. Here: the plan and the run pointer are
block blobs, the journal an append blob (each event one append block, committed when the call returns), and
the lock ``locks/<vm key>`` a blob whose lease is the lock. The lease is taken for ``lease`` seconds (15-60)
and renewed every third of that by a daemon thread; when the runner dies nobody renews it and it expires.
A renewal or check that the service refuses (lease broken, changed, or expired and taken) marks the lock lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient, ContainerClient, ExponentialRetry

from runbooks.errors import JournalError, LockHeld, LockLost, UsageError
from runbooks.journal import (
    CLOSED,
    STORE_CONNECTION_STRING_ENV,
    RunJournal,
    RunLock,
    Store,
    check_run_id,
    describe_holder,
    holder_info,
    run_start_event,
    vm_key,
)
from runbooks.plan import Plan

_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
# What the service answers when a lease operation names a lease the blob no longer has.
_LEASE_GONE = {"LeaseIdMismatchWithLeaseOperation", "LeaseIsBrokenAndCannotBeRenewed",
               "LeaseNotPresentWithLeaseOperation", "LeaseLost"}


def _first_line(e: Exception) -> str:
    if isinstance(e, HttpResponseError):
        lines = (e.message or str(e)).splitlines()
        return f"{_code(e) or e.status_code}: {lines[0] if lines else ''}"
    lines = str(e).splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def _code(e: HttpResponseError) -> str | None:
    """The storage error code (``LeaseAlreadyPresent``...), which the storage SDK sets on its errors."""
    code = getattr(e, "error_code", None)
    return str(getattr(code, "value", code)) if code else None  # a StorageErrorCode enum, or a plain string


def _ascii(value: str) -> str:
    """Blob metadata travels in HTTP headers: ASCII only."""
    return value.encode("ascii", "backslashreplace").decode()


class BlobLease(RunLock):
    """The per-VM lock: a lease on ``locks/<vm key>``, holder in the blob's metadata."""

    def __init__(self, store: BlobStore, vm_id: str, run_id: str) -> None:
        super().__init__(vm_id, run_id)
        self.store, self.duration = store, store.lease
        self.blob = store.blob(f"locks/{vm_key(vm_id)}")
        self.lease: BlobLeaseClient | None = None
        self.lost: str | None = None  # why the lock is no longer ours
        self.renewals = 0
        self._renewed_at = 0.0
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        self.store.ensure_container()
        with self.store.op(f"create the lock blob of {self.vm_id}"):
            try:
                self.blob.upload_blob(b"", overwrite=False)
            except (ResourceExistsError, HttpResponseError) as e:
                if getattr(e, "status_code", None) not in (409, 412):  # exists (leased or not): fine
                    raise
        lease = BlobLeaseClient(self.blob)
        asked_at = time.monotonic()  # the lease runs from when the service granted it: no earlier than this
        with self.store.op(f"take the lock of {self.vm_id}"):
            try:
                lease.acquire(lease_duration=self.duration)
            except HttpResponseError as e:
                if _code(e) not in ("LeaseAlreadyPresent", "LeaseIsBreakingAndCannotBeAcquired"):
                    raise
                raise LockHeld(f"another remediation of {self.vm_id} is running: "
                               f"{describe_holder(self.store.holder(self.vm_id))} (store {self.store.where})") from None
        self._renewed_at = asked_at
        self.lease = lease
        try:
            with self.store.op(f"record the holder of the lock of {self.vm_id}"):
                info = {**holder_info(self.run_id), "vm_id": self.vm_id}
                self.blob.set_blob_metadata({k: _ascii(v) for k, v in info.items()}, lease=lease)
        except BaseException:
            with contextlib.suppress(AzureError):
                lease.release()
            raise
        self._thread = threading.Thread(target=self._keep_renewing, name=f"lease-{self.run_id}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        with self._mutex:
            if self.lost:
                raise LockLost(self._lost_message())
            assert self.lease is not None, "renew before acquire"
            asked_at = time.monotonic()
            try:
                self.lease.renew()
            except HttpResponseError as e:
                if e.status_code in (409, 412) or _code(e) in _LEASE_GONE:
                    self.lost = f"the service refused to renew the lease: {_first_line(e)}"
                    raise LockLost(self._lost_message()) from None
                raise
            self._renewed_at = asked_at
            self.renewals += 1

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                self._renew()
            except LockLost:
                return
            except AzureError as e:  # unreachable for a moment: try again until the lease would have run out
                if time.monotonic() - self._renewed_at >= self.duration:
                    with self._mutex:
                        self.lost = f"the lease could not be renewed for {self.duration} s ({_first_line(e)})"
                    return

    def _lost_message(self) -> str:
        return (f"run {self.run_id} lost the lock of {self.vm_id} ({self.lost}); it stopped before its next write. "
                f"Another runner may hold it now: check with `invoke runs.list`, then resume (the journal is kept)")

    def ensure_held(self) -> None:
        """Renew now: a lease the service still renews for us is ours (raises LockLost otherwise)."""
        try:
            self._renew()
        except AzureError as e:
            raise LockLost(f"run {self.run_id} cannot confirm it still holds the lock of {self.vm_id} "
                           f"({_first_line(e)}); stopped before its next write. Re-run to resume") from None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.lease is None or self.lost:
            return
        with contextlib.suppress(AzureError):
            self.blob.set_blob_metadata({}, lease=self.lease)
        with contextlib.suppress(AzureError):
            self.lease.release()

    def __enter__(self) -> BlobLease:
        self.acquire()
        return self


class BlobJournal(RunJournal):
    """A run journal in ``runs/<id>/`` of the container."""

    def __init__(self, store: BlobStore, run_id: str) -> None:
        super().__init__(check_run_id(run_id))
        self.store = store
        self.plan_blob = store.blob(f"runs/{run_id}/plan.json")
        self.journal_blob = store.blob(f"runs/{run_id}/journal.jsonl")
        self.where = f"{store.where}/runs/{run_id}"

    def plan(self) -> Plan:
        with self.store.op(f"read the plan of run {self.run_id}"):
            try:
                raw = self.plan_blob.download_blob().readall()
            except ResourceNotFoundError:
                raise JournalError(f"no journal for run {self.run_id} in {self.store.where}") from None
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise JournalError(f"journal {self.where}/plan.json is unreadable: {e}") from None
        return Plan.from_dict(data, source=f"{self.where}/plan.json")

    def append(self, event: dict[str, Any]) -> None:
        with self.store.op(f"append to the journal of run {self.run_id}"):
            self.journal_blob.append_block(self._line(event).encode())

    def _read(self) -> tuple[str | None, str]:
        where = f"{self.where}/journal.jsonl"
        with self.store.op(f"read the journal of run {self.run_id}"):
            try:
                raw = self.journal_blob.download_blob().readall()
            except ResourceNotFoundError:
                return None, where
        return raw.decode("utf-8", "replace"), where

    def _update_pointer(self, vm_id: str, status: str) -> None:
        pointer = self.store.pointer(vm_id)
        with self.store.op(f"update the run pointer of {vm_id}"):
            if status in CLOSED:
                with contextlib.suppress(ResourceNotFoundError):
                    pointer.delete_blob()
                return
            with contextlib.suppress(ResourceNotFoundError):
                etag = pointer.get_blob_properties().etag
                body = json.dumps({"run_id": self.run_id, "vm_id": vm_id, "status": status})
                pointer.upload_blob(body.encode(), overwrite=True, if_match=etag)


class BlobStore(Store):
    """Journals and locks in one blob container."""

    def __init__(self, container: ContainerClient, where: str, lease: int) -> None:
        self.container, self.where, self.lease = container, where, lease
        self._container_checked = False

    @classmethod
    def connect(cls, url: str | None, container: str, credential: Any = None, *,
                connection_string: str | None = None, ca_bundle: str | None = None, lease: int = 30) -> BlobStore:
        if not _CONTAINER.match(container):
            raise UsageError(f"bad blob container name '{container}': 3-63 lowercase letters, digits and hyphens")
        kwargs: dict[str, Any] = {
            # the SDK's default backs off 15 s, 45 s...: longer than a lease lives
            "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3),
            "connection_timeout": 10, "read_timeout": 30,
        }
        if ca_bundle:
            if not os.path.isfile(ca_bundle):
                raise UsageError(f"CA bundle {ca_bundle} for the run store does not exist")
            kwargs["connection_verify"] = ca_bundle
        if connection_string:
            try:
                service = BlobServiceClient.from_connection_string(connection_string, **kwargs)
            except (ValueError, TypeError, KeyError):
                raise UsageError(f"{STORE_CONNECTION_STRING_ENV} is not a storage connection string "
                                 "(value not shown)") from None
        else:
            assert url is not None, "a blob store needs a URL or a connection string"
            if not url.startswith("https://") or not urlsplit(url).hostname:
                raise UsageError(f"storage account URL must be https:// (got {url}); for a local emulator over "
                                 f"http use {STORE_CONNECTION_STRING_ENV}")
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            try:
                service = BlobServiceClient(url, credential=credential, **kwargs)
            except ValueError as e:
                raise UsageError(f"bad storage account URL {url}: {e}") from None
        parts = urlsplit(service.url)  # no query: a SAS in a connection string stays out of messages
        where = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{container}"
        return cls(service.get_container_client(container), where, lease)

    def describe(self) -> str:
        return f"blob container {self.where}"

    @contextlib.contextmanager
    def op(self, what: str) -> Iterator[None]:
        """Turn the SDK's errors into one JournalError line (never the connection string or a token)."""
        try:
            yield
        except AzureError as e:
            raise JournalError(f"run store {self.where}: cannot {what}: {_first_line(e)}") from None

    def blob(self, name: str) -> BlobClient:
        return self.container.get_blob_client(name)

    def pointer(self, vm_id: str) -> BlobClient:
        return self.blob(f"vms/{vm_key(vm_id)}.json")

    def ensure_container(self) -> None:
        if self._container_checked:
            return
        with self.op("create the container"):
            try:
                self.container.create_container()
            except ResourceExistsError:
                pass
            except HttpResponseError as e:
                if e.status_code != 403:  # a role scoped to the container may not create it: use it as it is
                    raise
        self._container_checked = True

    def lock(self, vm_id: str, run_id: str) -> BlobLease:
        return BlobLease(self, vm_id, run_id)

    def create(self, plan: Plan, lock: RunLock | None = None) -> BlobJournal:
        self.ensure_container()
        journal = BlobJournal(self, plan.run_id)
        with self.op(f"create the journal of run {plan.run_id}"):
            with contextlib.suppress(ResourceExistsError):
                journal.journal_blob.create_append_blob(if_none_match="*")
            try:
                journal.plan_blob.upload_blob(plan.dumps().encode(), overwrite=False)
                new = True
            except ResourceExistsError:
                new = False
        if new:
            journal.append(run_start_event(plan))
        with self.op(f"set the run pointer of {plan.vm_id}"):
            body = json.dumps({"run_id": plan.run_id, "vm_id": plan.vm_id, "status": "running"})
            self.pointer(plan.vm_id).upload_blob(body.encode(), overwrite=True)
        journal.lock = lock
        return journal

    def open(self, run_id: str) -> BlobJournal:
        journal = BlobJournal(self, run_id)
        with self.op(f"find run {run_id}"):
            try:
                journal.plan_blob.get_blob_properties()
            except ResourceNotFoundError:
                raise JournalError(f"no journal for run {run_id} in {self.where}") from None
        return journal

    def active_run(self, vm_id: str) -> BlobJournal | None:
        pointer = self.pointer(vm_id)
        with self.op(f"read the run pointer of {vm_id}"):
            try:
                raw = pointer.download_blob().readall()
            except ResourceNotFoundError:
                return None
        try:
            data = json.loads(raw)
            run_id = str(data["run_id"])
        except (ValueError, KeyError, TypeError) as e:
            raise JournalError(f"run pointer {self.where}/{pointer.blob_name} is corrupt ({e}); delete it to "
                               "start over") from None
        return self.open(run_id)

    def run_ids(self) -> list[str]:
        with self.op("list runs"):
            try:
                names = [b.name for b in self.container.list_blobs(name_starts_with="runs/")]
            except ResourceNotFoundError:
                return []
        return sorted(n.split("/")[1] for n in names if n.count("/") == 2 and n.endswith("/plan.json"))

    def holder(self, vm_id: str) -> dict[str, str] | None:
        with self.op(f"read the lock of {vm_id}"):
            try:
                props = self.blob(f"locks/{vm_key(vm_id)}").get_blob_properties()
            except ResourceNotFoundError:
                return None
        if props.lease.state not in ("leased", "breaking"):
            return None
        return dict(props.metadata or {})
