"""The installed command: ``rca-runbooks`` works from any folder (not only the repository root, as ``invoke``
does), and output cut short by a pipe (``| head``) ends quietly instead of with a BrokenPipe traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("rca-runbooks")


@pytest.fixture
def script() -> Path:
    if not SCRIPT.exists():
        pytest.skip("rca-runbooks is not installed in this environment (pip install -e '.[test]')")
    return SCRIPT


def test_the_command_works_from_any_folder(script: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(script), "playbooks.list", "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "generalized-vm" in done.stdout and "redeploy-vm" in done.stdout
    helped = subprocess.run([str(script), "--help", "remediate"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "--dry-run" in helped.stdout


def test_a_closed_pipe_ends_quietly(script: Path, tmp_path: Path) -> None:
    """The reader is gone before the command writes a byte (``| head`` that already has its lines)."""
    proc = subprocess.Popen([str(script), "--list"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has started and printed anything
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
