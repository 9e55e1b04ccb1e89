"""``invoke runs.list`` / ``invoke runs.show``: the audit trail of past runs, read through the real CLI from
either store (the local directory; a blob container on Azurite): a succeeded run, a failed one and an
unfinished one, their plan summary, calls, results, who, when and status, as text and as JSON."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from remediation_helpers import Rig, seed
from store_helpers import new_container

from runbooks.errors import ApplyFailed
from runbooks.journal import LocalStore, Store
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate


@dataclass
class Where:
    store: Store
    env: dict[str, str]
    flag: list[str]  # the same store named with --store, where the CLI can (the local directory)


@pytest.fixture(params=["local", "blob"])
def where(request: pytest.FixtureRequest, rig: Rig, tmp_path: Path) -> Where:
    if request.param == "local":
        return Where(LocalStore(rig.home), {}, ["--store", str(rig.home)])
    azurite = request.getfixturevalue("azurite")
    container = new_container()
    return Where(azurite.store(container), azurite.env(container), [])


@dataclass
class Runs:
    succeeded: str
    failed: str
    unfinished: str


def _make_runs(rig: Rig, store: Store) -> Runs:
    az = rig.az()
    seed(rig, "rg-demo/app-01")
    seed(rig, "rg-demo/api-01")
    _, ok = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image")
    _, cut = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image")  # made now: the VM is generalized
    remediate(az, ok, rig.hooks(), yes=True, store=store)
    rig.arm.add_fault(method="PUT", path=r"/disks/api-01_OsDisk$", action="error", status=400, times=0,
                      error={"code": "InvalidParameter", "message": "Injected bad request."})
    _, bad = plan_remediation(az, VmRef.parse("rg-demo/api-01"), "from-os-disk")
    with pytest.raises(ApplyFailed):
        remediate(az, bad, rig.hooks(), yes=True, store=store)
    rig.arm.world.faults.clear()
    # a run that was killed after its first step: no run-end
    journal = store.create(cut)
    journal.append({"event": "step-start", "index": 0, "step": cut.steps[0].name})
    journal.append({"event": "step-done", "index": 0, "step": cut.steps[0].name})
    return Runs(ok.run_id, bad.run_id, cut.run_id)


def test_runs_list_and_show_from_either_store(rig: Rig, where: Where) -> None:
    runs = _make_runs(rig, where.store)
    env = rig.env(**where.env)

    listed = rig.invoke("runs.list", "--json", *where.flag, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["run_id"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {runs.succeeded, runs.failed, runs.unfinished}
    assert json.loads(listed.stdout)[0]["run_id"] == runs.unfinished  # newest first
    ok, bad, cut = rows[runs.succeeded], rows[runs.failed], rows[runs.unfinished]
    assert (ok["status"], bad["status"], cut["status"]) == ("succeeded", "failed", "unfinished")
    assert ok["vm"] == "rg-demo/app-01" and ok["scenario"] == "from-image" and bad["scenario"] == "from-os-disk"
    assert ok["host"] == socket.gethostname() and ok["user"] and ok["pid"]
    assert ok["started"] <= ok["ended"] and cut["ended"] is None
    assert ok["steps_done"] == ok["steps_total"] > 0 and ok["calls_made"] > 0 and ok["calls_failed"] == 0
    assert bad["calls_failed"] >= 1 and "InvalidParameter" in bad["error"] and bad["steps_done"] < bad["steps_total"]
    assert cut["steps_done"] == 1 and cut["calls_made"] == 0

    text = rig.invoke("runs.list", *where.flag, env=env)
    assert text.returncode == 0 and "3 run(s)" in text.stdout
    for run_id, status in ((runs.succeeded, "succeeded"), (runs.failed, "failed"), (runs.unfinished, "unfinished")):
        assert any(line.startswith(run_id[:8]) and status in line for line in text.stdout.splitlines()), text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 100, text.stdout

    shown = rig.invoke("runs.show", runs.failed, *where.flag, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"Run {runs.failed}: failed")
    assert "rg-demo/api-01" in shown.stdout and "InvalidParameter" in shown.stdout
    assert "failed: InvalidParameter" in shown.stdout and "[destructive]" in shown.stdout
    assert f"on {socket.gethostname()}" in shown.stdout and max(len(line) for line in shown.stdout.splitlines()) <= 100
    assert where.store.describe() in " ".join(shown.stdout.split())  # a long store path wraps within 100 columns

    detail = json.loads(rig.invoke("runs.show", runs.succeeded, "--json", *where.flag, env=env).stdout)
    assert detail["status"] == "succeeded" and detail["events"][0]["event"] == "run-start"
    calls = [c for s in detail["steps"] for c in s["calls"]]
    assert calls and all(c["result"] == "done" or c["result"] == "not made" for c in calls)
    assert sum(c["result"] == "done" for c in calls) == detail["calls_made"]
    assert all(s["state"] == "done" for s in detail["steps"])


@pytest.mark.parametrize(("args", "error"), [
    (["runs.show", "no-such-run"], "no journal for run no-such-run"),
    (["runs.show", "../../etc"], "bad run id '../../etc'"),
    (["runs.list", "--store", "https://acct.blob.core.windows.net"], "expected https://ACCOUNT.blob.core.windows.net"),
])
def test_runs_bad_input_is_one_line(rig: Rig, args: list[str], error: str) -> None:
    done = rig.invoke(*args)
    assert done.returncode == 2 and error in done.stderr, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_runs_list_of_an_empty_store(rig: Rig, where: Where) -> None:
    done = rig.invoke("runs.list", *where.flag, env=rig.env(**where.env))
    assert done.returncode == 0 and done.stdout.strip() == "no runs", done.stdout + done.stderr


def test_remediate_writes_to_the_store_the_flag_names(rig: Rig, tmp_path: Path) -> None:
    seed(rig, "rg-demo/app-01")
    elsewhere = tmp_path / "elsewhere"
    done = rig.invoke("remediate", "--vm", "rg-demo/app-01",
                      "--scenario", "from-image", "--yes", "--verify-timeout", "30",
                      "--store", str(elsewhere))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(LocalStore(elsewhere).run_ids()) == 1 and not (rig.home / "runs").exists()
