"""The articles.* and playbooks.* invoke tasks, run as a user would: exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "articles"
INVOKE = Path(sys.executable).parent / "invoke"


def inv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOKS_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(INVOKE), *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_list_filters_by_scenario_and_shows_the_playbook() -> None:
    r = inv("articles.list", "--dir", str(FIXTURES), "--scenario", "startfailure")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["Startfailure_GeneralizedImage", "StartFailure", "generalized-vm"]
    assert lines[-1] == "1 articles"


def test_list_json_from_env_dir() -> None:
    r = inv("articles.list", "--json", env={"RUNBOOKS_ARTICLES": str(FIXTURES)})
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["articleId"] for row in rows] == [
        "Startfailure_GeneralizedImage",
        "VMA_RCA_Test_Restart",
        "Test_Quirky",
    ]
    assert rows[2]["warnings"]


def test_show_fills_placeholders() -> None:
    r = inv(
        "articles.show",
        "startfailure_generalizedimage",
        "--set",
        "vmname=web01",
        "--set",
        "StartTime=09:00",
        "--dir",
        str(FIXTURES),
    )
    assert r.returncode == 0, r.stderr
    assert "playbook: generalized-vm (from-image, from-os-disk)" in r.stdout
    assert "Findings for machine web01 today" in r.stdout
    assert "refused to boot at 09:00." in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["articles.show", "No_Such_Article"], "error: unknown article id 'No_Such_Article'"),
        (["articles.show", "Test_Quirky", "--set", "vmname"], "error: --set 'vmname': expected NAME=VALUE"),
        (["articles.show", "Test_Quirky", "--set", "color=red"], "error: --set color: no such placeholder"),
    ],
)
def test_show_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    r = inv(*args, "--dir", str(FIXTURES))
    assert r.returncode == 2
    assert one_line_error(r).startswith(message)


def test_missing_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = inv("articles.coverage", "--dir", str(tmp_path / "absent"))
    assert r.returncode == 2
    assert (
        one_line_error(r) == f"error: {tmp_path / 'absent'}: no such articles folder; set RUNBOOKS_ARTICLES "
        "or pass --dir"
    )


def test_coverage_groups_by_family() -> None:
    r = inv("articles.coverage", "--json", "--dir", str(FIXTURES))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["total"], data["claimed"]) == (3, 1)
    recreate = data["families"]["RECREATE"]
    assert (recreate["class"], recreate["total"]) == ("remediate", 1)
    assert (recreate["claimed"], recreate["unclaimed"]) == ({"Startfailure_GeneralizedImage": "generalized-vm"}, [])
    assert data["families"]["INFO_PLATFORM"] == {**data["families"]["INFO_PLATFORM"], "class": "explain",
                                                  "total": 0, "claimed": {}, "unclaimed": []}
    # the fixture's two made-up ids are in no family
    assert data["unclassified"]["unclaimed"] == ["Test_Quirky", "VMA_RCA_Test_Restart"]
    assert data["classes"] == {"remediate": {"claimed": 1, "total": 1}, "recommend": {"claimed": 0, "total": 0},
                               "explain": {"claimed": 0, "total": 0}}

    lines = inv("articles.coverage", "--dir", str(FIXTURES)).stdout.splitlines()
    assert lines[0].split()[:3] == ["RECREATE", "remediate", "1/1"]
    assert lines[1].split()[:3] == ["ALLOC", "remediate", "0/0"]
    assert next(line for line in lines if line.startswith("QUOTA")).split()[:3] == ["QUOTA", "recommend", "0/0"]
    assert lines[-4].split()[:3] == ["(unclassified)", "-", "0/2"]
    assert lines[-3:-1] == ["    Test_Quirky", "    VMA_RCA_Test_Restart"]  # the unclaimed ones, indented
    assert lines[-1] == ("1/3 articles claimed by a playbook; remediate 1/1, recommend 0/0, explain 0/0, "
                         "unclassified 0/2")
    assert len(lines) == 18 + 1 + 2 + 1
    assert max(len(line) for line in lines) <= 100

    lines = inv("articles.coverage", "--all", "--dir", str(FIXTURES)).stdout.splitlines()
    assert lines[1].split() == ["Startfailure_GeneralizedImage", "generalized-vm"]
    assert [line.split() for line in lines[-3:-1]] == [["Test_Quirky", "-"], ["VMA_RCA_Test_Restart", "-"]]


def test_validate_shipped_playbooks() -> None:
    r = inv("playbooks.validate", "--corpus", str(FIXTURES / ".." / "articles"))
    # the fixture corpus holds one generalized-VM article and none of the other 55 the playbooks claim: lint says so
    assert r.returncode == 1
    assert r.stdout.count("is not in the corpus") == 55
    r = inv("playbooks.validate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("playbooks OK")


def test_validate_bad_playbook_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: bad\ntitle: t\nunknown: 1\n")
    r = inv("playbooks.validate", "--dir", str(tmp_path), "--corpus", str(FIXTURES))
    assert r.returncode == 1
    assert f"error: {tmp_path / 'bad.yaml'}:3: unknown: unknown field" in r.stdout.splitlines()
    assert one_line_error(r).startswith("5 error(s)")  # unknown + 4 required fields missing


def test_validate_missing_dir_exit_2(tmp_path: Path) -> None:
    r = inv("playbooks.validate", "--dir", str(tmp_path / "none"), "--corpus", str(FIXTURES))
    assert r.returncode == 2
    assert "no such playbooks folder" in one_line_error(r)
