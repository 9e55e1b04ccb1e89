"""The wheel set for the Automation sandbox: which wheels it accepts, and a real build (pip download) whose
closure imports under a real CPython 3.10 with nothing but the set on the path (the service resolves nothing)."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from automation_helpers import python310

from runbooks.automation.package import NOT_IN_SANDBOX, RUNBOOKS, WheelSet, build, runtime_requirements, sandbox_accepts
from runbooks.errors import UsageError

ACCEPTS = [
    ("azure_core-1.41.0-py3-none-any.whl", True),
    ("pydantic_core-2.50.4-cp310-cp310-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", True),
    ("cryptography-50.0.2-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", True),
    ("pydantic_core-2.50.4-cp311-cp311-manylinux2014_x86_64.whl", False),  # another CPython
    ("pydantic_core-2.50.4-cp310-cp310-win_amd64.whl", False),  # the 3.8 sandbox was Windows; 3.10 is Linux
    ("pydantic_core-2.50.4-cp310-cp310-manylinux2014_aarch64.whl", False),
    ("pydantic_core-2.50.4-cp310-cp310-musllinux_1_1_x86_64.whl", False),
    ("cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl", False),  # abi3 newer than 3.10
    ("six-1.16.0-py2.py3-none-any.whl", True),
    ("package-1.0.tar.gz", False),
]


@pytest.mark.parametrize(("filename", "accepted"), ACCEPTS)
def test_sandbox_accepts(filename: str, accepted: bool) -> None:
    assert sandbox_accepts(filename, "3.10") is accepted


def test_runtime_requirements_leave_out_cli_and_emulator() -> None:
    names = {r.split("<")[0].split(">")[0].split("=")[0].split(";")[0].strip().lower() for r in runtime_requirements()}
    assert "azure-mgmt-compute" in names and "azure-identity" in names and "pydantic" in names
    assert not names & NOT_IN_SANDBOX


def test_build_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        build(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_built_set_is_complete_and_imports_under_python310(wheel_set: WheelSet, tmp_path: Path) -> None:
    assert {s.runbook for s in wheel_set.scripts} == set(RUNBOOKS)
    assert all(sandbox_accepts(w.file) for w in wheel_set.wheels)
    assert 0 < wheel_set.size < 100 * 2**20
    wheel_set.verify()
    assert WheelSet.load(wheel_set.directory).to_dict() == wheel_set.to_dict()
    python = python310()
    if python is None:
        pytest.skip("no CPython 3.10 on this machine to import the wheel set with")
    site = tmp_path / "site"
    for w in wheel_set.wheels:
        with zipfile.ZipFile(wheel_set.directory / w.file) as z:
            z.extractall(site)
    probe = ("import runbooks.automation.entry, runbooks.remediate, runbooks.playbook as p, azure.identity, "
             "azure.mgmt.compute, azure.mgmt.network, pydantic_core; assert 'generalized-vm' in p.load_playbooks(); "
             "import sys; print(sys.version_info[:2])")
    proc = subprocess.run([python, "-s", "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(3, 10)"


def test_a_changed_file_is_caught(wheel_set: WheelSet, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(wheel_set.directory, copy)
    script = copy / wheel_set.scripts[0].file
    script.write_text(script.read_text() + "\n# edited\n")
    with pytest.raises(UsageError, match="changed since the wheel set was built"):
        WheelSet.load(copy).verify()
