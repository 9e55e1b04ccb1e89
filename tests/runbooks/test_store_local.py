"""The local run store (the default, today's behaviour) behind the store interface, and choosing a store from
settings, flags and the environment. The blob store's own tests are in test_store_blob.py."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
from remediation_helpers import Rig, assert_converged, before, seed

from armsim.identity import StaticTokenCredential
from runbooks.apply import Hooks
from runbooks.errors import JournalError, LockHeld, LockLost, UsageError
from runbooks.journal import (
    Journal,
    LocalStore,
    VmLock,
    lease_seconds,
    split_store_url,
    store_from_env,
    store_from_settings,
)
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate, resume
from runbooks.store_blob import BlobStore

APP = "rg-demo/app-01"
VM_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def test_the_local_lock_refuses_a_second_run_and_says_who_holds_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with store.lock(VM_ID, "first-run") as lock:
        with pytest.raises(LockHeld) as refused:
            store.lock(VM_ID, "second-run").acquire()
        assert re.fullmatch(rf"another remediation of {VM_ID} is running: run first-run \(pid {os.getpid()} on "
                            rf"{re.escape(socket.gethostname())}, user [^)]+\) since \d{{4}}-.+", str(refused.value))
        lock.ensure_held()
        assert isinstance(lock, VmLock)
        lock.path.unlink()  # someone cleared the locks folder: another run could take a new lock file now
        with pytest.raises(LockLost, match="run first-run no longer holds the lock"):
            lock.ensure_held()
    with store.lock(VM_ID, "third-run"):
        pass


def test_a_lost_local_lock_stops_the_run_before_the_delete(rig: Rig) -> None:
    seed(rig, APP)
    b = before(rig, APP)
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(APP), "from-image")
    store = LocalStore()

    def confirm(question: str) -> bool:
        if "destructive" in question:
            for lock_file in (rig.home / "locks").glob("*.lock"):
                lock_file.unlink()
        return True

    mark = rig.arm.last_request
    with pytest.raises(LockLost, match=r"no longer holds the lock .* stopped before its next write"):
        remediate(az, plan, Hooks(confirm=confirm, progress=lambda line: None), store=store)
    assert not [w for w in rig.arm.writes(mark) if w["method"] == "DELETE"]
    events = store.open(plan.run_id).events()
    assert "run-end" not in {e["event"] for e in events}  # the journal is left for the next holder
    resume(az, VmRef.parse(APP), rig.hooks(), yes=True, store=store)
    assert_converged(rig, b, "from-image")


def test_a_run_planned_while_another_ran_is_refused_under_the_lock(rig: Rig) -> None:
    """Two runners planned the same VM; the first started (its pointer is set) and died. The second gets the lock
    but must not run its own plan over the first's half-done work: it is told to resume."""
    seed(rig, APP)
    az = rig.az()
    _, first = plan_remediation(az, VmRef.parse(APP), "from-image")
    _, second = plan_remediation(az, VmRef.parse(APP), "from-image")
    Journal.create(first)
    mark = rig.arm.last_request
    with pytest.raises(JournalError, match=f"run {first.run_id} for rg-demo/app-01 is unfinished: resume it first"):
        remediate(az, second, rig.hooks(), yes=True)
    assert rig.arm.writes(mark) == []


def test_journals_record_who_ran_them(rig: Rig) -> None:
    seed(rig, APP)
    _, plan = plan_remediation(rig.az(), VmRef.parse(APP), "from-image")
    start = Journal.create(plan).events()[0]
    assert start["event"] == "run-start" and start["host"] == socket.gethostname() and start["pid"] == str(os.getpid())
    assert start["user"] and start["user"] != "unknown"


# --- choosing a store -------------------------------------------------------------------------------------------


def test_no_settings_means_the_local_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNBOOKS_STORE_URL", "RUNBOOKS_STORE_CONTAINER", "RUNBOOKS_STORE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNBOOKS_HOME", str(tmp_path / "home"))
    default = store_from_settings(None, None)
    assert isinstance(default, LocalStore) and default.root == tmp_path / "home"
    assert isinstance(store_from_env(""), LocalStore)
    flagged = store_from_env(str(tmp_path / "elsewhere"))
    assert isinstance(flagged, LocalStore) and flagged.root == tmp_path / "elsewhere"


def test_a_store_url_names_the_account_and_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_store_url("https://acct.blob.core.windows.net/runbooks") == ("https://acct.blob.core.windows.net",
                                                                               "runbooks")
    assert split_store_url("https://127.0.0.1:10000/devstoreaccount1/runs/") == (
        "https://127.0.0.1:10000/devstoreaccount1", "runs")
    store = store_from_env("https://acct.blob.core.windows.net/runbooks", credential=StaticTokenCredential())
    assert isinstance(store, BlobStore) and store.describe() == "blob container https://acct.blob.core.windows.net/runbooks"
    monkeypatch.setenv("RUNBOOKS_STORE_URL", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("RUNBOOKS_STORE_CONTAINER", "audit")
    monkeypatch.setenv("RUNBOOKS_STORE_LEASE_SECONDS", "20")
    from_env = store_from_env("", credential=StaticTokenCredential())
    assert isinstance(from_env, BlobStore) and from_env.where.endswith("/audit") and from_env.lease == 20


@pytest.mark.parametrize(("settings", "error"), [
    ({"url": "https://acct.blob.core.windows.net", "container": ""}, "blob store without a container"),
    ({"url": "", "container": "runs"}, "store container 'runs' given without a storage account URL"),
    ({"url": "http://acct.blob.core.windows.net", "container": "runs"}, "storage account URL must be https://"),
    ({"url": "https://acct.blob.core.windows.net", "container": "Bad_Name"}, "bad blob container name 'Bad_Name'"),
    ({"url": "https://acct.blob.core.windows.net", "container": "runs", "lease": 14}, "lease duration must be 15-60"),
    ({"url": "https://acct.blob.core.windows.net", "container": "runs", "lease": 61}, "lease duration must be 15-60"),
    ({"url": "", "container": "runs", "connection_string": "Sekret=1;AccountKey=c2VrcmV0"},
     "RUNBOOKS_STORE_CONNECTION_STRING is not a storage connection string"),
])
def test_bad_store_settings_are_usage_errors(settings: dict[str, object], error: str) -> None:
    url, container = str(settings.pop("url")), str(settings.pop("container"))
    with pytest.raises(UsageError, match=re.escape(error)) as refused:
        store_from_settings(url, container, StaticTokenCredential(), **settings)  # type: ignore[arg-type]
    assert "c2VrcmV0" not in str(refused.value)


@pytest.mark.parametrize("flag", ["https://acct.blob.core.windows.net", "https://acct.blob.core.windows.net/",
                                  "https:///runs"])
def test_a_store_url_without_a_container_is_refused(flag: str) -> None:
    with pytest.raises(UsageError):
        store_from_env(flag, credential=StaticTokenCredential())


def test_lease_duration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOKS_STORE_LEASE_SECONDS", raising=False)
    assert lease_seconds() == 30
    monkeypatch.setenv("RUNBOOKS_STORE_LEASE_SECONDS", "15")
    assert lease_seconds() == 15
    monkeypatch.setenv("RUNBOOKS_STORE_LEASE_SECONDS", "soon")
    with pytest.raises(UsageError, match="whole number of seconds"):
        lease_seconds()


def test_a_store_url_with_a_sas_token_is_refused_without_showing_it() -> None:
    from runbooks.errors import UsageError
    from runbooks.journal import split_store_url

    with pytest.raises(UsageError) as e:
        split_store_url("https://acct.blob.core.windows.net/runs?sv=2024&sig=TOPSECRETSIG")
    assert "TOPSECRETSIG" not in str(e.value) and "query string" in str(e.value)


def test_a_unique_run_id_prefix_names_the_run(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for run_id in ("4f9bd588-aaaa-4000-8000-000000000001", "4f9bd588-bbbb-4000-8000-000000000002",
                   "7c21e0aa-cccc-4000-8000-000000000003"):
        (tmp_path / "runs" / run_id).mkdir(parents=True)
        (tmp_path / "runs" / run_id / "plan.json").write_text("{}")
    assert store.resolve("7c21") == "7c21e0aa-cccc-4000-8000-000000000003"
    assert store.resolve("4f9bd588-aaaa-4000-8000-000000000001") == "4f9bd588-aaaa-4000-8000-000000000001"
    with pytest.raises(UsageError, match="run id prefix '4f9bd588' is ambiguous"):
        store.resolve("4f9bd588")
    assert store.resolve("dead") == "dead"  # no such run: the caller's lookup says so
    with pytest.raises(UsageError, match="bad run id"):
        store.resolve("../x")
