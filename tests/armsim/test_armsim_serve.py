"""``python -m armsim serve`` as a subprocess: the JSON line, the SDK against it, SIGTERM, --state."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.mgmt.compute import ComputeManagementClient

from armsim import StaticTokenCredential

FIELDS = {"endpoint", "ca_bundle", "subscription_id", "tenant_id", "identity_endpoint", "identity_header"}


@contextmanager
def serve(*args: str) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--port", "0", "--latency-scale", "0.001",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        info = json.loads(line)
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert proc.stdout.read() == ""  # exactly one line on stdout


def _client(info: dict[str, Any]) -> ComputeManagementClient:
    return ComputeManagementClient(StaticTokenCredential(), info["subscription_id"], base_url=info["endpoint"],
                                   connection_verify=info["ca_bundle"], polling_interval=0, retry_total=0,
                                   credential_scopes=["https://management.azure.com/.default"])


def test_serve_prints_one_json_line_and_persists_state(tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    with serve("--scenario", "healthy", "--state", str(state)) as info:
        assert set(info) == FIELDS
        assert info["endpoint"].startswith("https://127.0.0.1:")
        assert Path(info["ca_bundle"]).is_file()
        compute = _client(info)
        vm = compute.virtual_machines.get("rg-web", "web-01")
        assert vm.provisioning_state == "Succeeded"
        compute.virtual_machines.begin_deallocate("rg-web", "web-01").result()
    assert state.is_file()
    with serve("--state", str(state)) as info2:  # no scenario: the saved world
        compute = _client(info2)
        view = compute.virtual_machines.instance_view("rg-web", "web-01")
        assert "PowerState/deallocated" in [s.code for s in view.statuses]


def test_serve_refuses_bad_arguments() -> None:
    proc = subprocess.run([sys.executable, "-m", "armsim", "serve", "--latency-scale", "0"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2 and "latency-scale" in proc.stderr and proc.stdout == ""
