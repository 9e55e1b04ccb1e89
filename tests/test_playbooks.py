"""Playbook schema, loading and lint: errors name file, line and field; the shipped playbooks are clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runbooks.errors import PlaybookError, UsageError
from runbooks.playbook import (
    ManualStep,
    RunStep,
    default_playbooks_dir,
    field_path,
    lint,
    load_playbook,
    load_playbooks,
    playbook_for_article,
)
from runbooks.signals import InstanceViewSignal, RelatedResourceSignal
from runbooks.steps.backup import SnapshotDisksParams
from runbooks.steps.recreate import DeleteVmParams
from runbooks.steps.registry import catalog

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "playbooks"
CORPUS = REPO.parent / "shared" / "articles"
FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "articles"

GENERALIZED_ARTICLES = (
    "Startfailure_GeneralizedImage",
    "DeploymentFailure_RCA-operationotallowed-start-vm-fails-image-generalized",
    "DeploymentFailure_rca-OperationNotAllowedOnGeneralizedVM",
    "DeploymentFailure_rca-OperationNotAllowedOnGeneralizedVM-Linux",
)
COMMON_STEPS = [
    "export-vm-definition",
    "record-network",
    "snapshot-disks",
    "keep-public-ips",
    "delete-vm",
    "rebuild-deleted-disks",
    "rebuild-deleted-nics",
    "{create}",
    "start-vm",
    "restore-extensions",
]

MINIMAL = """\
id: {id}
title: Test playbook
articles: [{article}]
detect: [sig-a]
signals:
  - id: sig-a
    description: a test signal
    source: instance-view
    status_code: OSState/generalized
scenarios:
  - id: only
    title: Do it
    when: [sig-a]
    steps:
      - run: snapshot-disks
        with: {{incremental: true}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def minimal(folder: Path, name: str = "test-pb", article: str = "Art_1", **replace: str) -> Path:
    text = MINIMAL.format(id=name, article=article)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return write(folder, name, text)


# --- the shipped playbooks --------------------------------------------------------------------------


def test_shipped_playbooks_lint_clean() -> None:
    corpus = CORPUS if (CORPUS / "manifest.tsv").is_file() else None
    assert [str(i) for i in lint(SHIPPED, corpus)] == []


def test_generalized_vm_serves_exactly_the_four_articles() -> None:
    pb = load_playbooks(SHIPPED)["generalized-vm"]
    assert pb.articles == GENERALIZED_ARTICLES
    assert pb.path == SHIPPED / "generalized-vm.yaml"
    for article_id in GENERALIZED_ARTICLES:
        assert playbook_for_article(article_id) == pb
    assert playbook_for_article("startfailure_generalizedimage") == pb
    assert playbook_for_article("VMA_RCA_Hardware_NodeReboot_Disk_Failure").id == "platform-event"  # type: ignore[union-attr]
    assert playbook_for_article("Startfailure_NoSuchArticle") is None


@pytest.mark.parametrize(
    ("scenario", "create"),
    [("from-image", "create-vm-from-image"), ("from-os-disk", "create-vm-from-os-disk")],
)
def test_generalized_vm_scenarios_run_the_steps_in_order(scenario: str, create: str) -> None:
    sc = load_playbook(SHIPPED / "generalized-vm.yaml").scenario(scenario)
    assert [s.run for s in sc.run_steps] == [create if s == "{create}" else s for s in COMMON_STEPS]
    assert [s.run for s in sc.destructive_steps] == ["delete-vm"]
    assert all(s.run in catalog() for s in sc.run_steps)
    assert "os-generalized" in sc.when
    assert {c.signal: c.holds for c in sc.verify}["os-generalized"] is False


def test_from_os_disk_starts_with_a_manual_confirmation_about_sysprep() -> None:
    pb = load_playbook(SHIPPED / "generalized-vm.yaml")
    first = pb.scenario("from-os-disk").steps[0]
    assert isinstance(first, ManualStep) and first.confirm
    assert "sysprep" in first.manual.lower() and "deprovision" in first.manual.lower()
    assert not any(isinstance(s, ManualStep) for s in pb.scenario("from-image").steps)


def test_step_params_are_typed_by_the_catalogue() -> None:
    pb = load_playbook(SHIPPED / "generalized-vm.yaml")
    steps = {s.run: s for s in pb.scenario("from-image").run_steps}
    assert isinstance(steps["snapshot-disks"].params, SnapshotDisksParams)
    assert isinstance(steps["delete-vm"].params, DeleteVmParams)
    assert steps["delete-vm"].is_destructive and not steps["snapshot-disks"].is_destructive


def test_signals_are_typed_by_source() -> None:
    pb = load_playbook(SHIPPED / "generalized-vm.yaml")
    generalized = pb.signal("os-generalized")
    assert isinstance(generalized, InstanceViewSignal) and generalized.status_code == "OSState/generalized"
    image = pb.signal("has-captured-image")
    assert isinstance(image, RelatedResourceSignal)
    assert image.where == {"properties.sourceVirtualMachine.id": "$vm.id"}
    with pytest.raises(KeyError):
        pb.signal("nope")


def test_playbooks_folder_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minimal(tmp_path, "other", article="Other_Article")
    monkeypatch.setenv("RUNBOOKS_PLAYBOOKS", str(tmp_path))
    assert default_playbooks_dir() == tmp_path
    assert list(load_playbooks()) == ["other"]
    assert playbook_for_article("Other_Article") is not None
    monkeypatch.delenv("RUNBOOKS_PLAYBOOKS")
    assert default_playbooks_dir() == SHIPPED


# --- errors name file, line and field ---------------------------------------------------------------


def only_issue(folder: Path) -> str:
    issues = lint(folder)
    assert len(issues) == 1, [str(i) for i in issues]
    return str(issues[0])


def test_minimal_playbook_is_valid(tmp_path: Path) -> None:
    minimal(tmp_path)
    assert lint(tmp_path) == []
    step = load_playbook(tmp_path / "test-pb.yaml").scenarios[0].steps[0]
    assert isinstance(step, RunStep) and step.params == SnapshotDisksParams(incremental=True)


def test_unknown_field(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"title: Do it": "title: Do it\n    colour: red"})
    assert only_issue(tmp_path) == f"{p}:13: scenarios[0].colour: unknown field"
    with pytest.raises(PlaybookError, match=rf"^{p}:13: scenarios\[0\]\.colour: unknown field$"):
        load_playbook(p)


def test_unknown_step(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"run: snapshot-disks": "run: snapshot-everything"})
    assert only_issue(tmp_path).startswith(
        f"{p}:15: scenarios[0].steps[0].run: unknown step 'snapshot-everything'"
    )


def test_bad_param_type(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"incremental: true": "incremental: sometimes"})
    assert only_issue(tmp_path) == (
        f"{p}:16: scenarios[0].steps[0].with.incremental: "
        "Input should be a valid boolean, unable to interpret input"
    )


def test_unknown_param(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"incremental: true": "incremental: true, fast: true"})
    assert only_issue(tmp_path) == (
        f"{p}:16: scenarios[0].steps[0].with.fast: "
        "unknown parameter of snapshot-disks (parameters: incremental)"
    )


def test_unknown_signal_in_when(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"when: [sig-a]": "when: [sig-a, sig-b]"})
    assert only_issue(tmp_path) == f"{p}:13: scenarios[0].when[1]: unknown signal 'sig-b'; declared: sig-a"


def test_unknown_signal_source(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"source: instance-view": "source: crystal-ball"})
    assert only_issue(tmp_path).startswith(f"{p}:6: signals[0]: source must be one of instance-view")


def test_wrong_field_for_the_signal_source(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"status_code: OSState/generalized": "state: Failed"})
    issues = sorted(str(i) for i in lint(tmp_path))
    assert issues == [
        f"{p}:6: signals[0].status_code: Field required",
        f"{p}:9: signals[0].state: unknown field",
    ]


def test_step_with_both_run_and_manual(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"- run: snapshot-disks": "- manual: do it by hand\n        run: snapshot-disks"})
    assert only_issue(tmp_path).startswith(f"{p}:15: scenarios[0].steps[0]: a step has exactly one of run:")


def test_destructive_flag_must_match_the_catalogue(tmp_path: Path) -> None:
    minimal(tmp_path, **{"with: {incremental: true}": "destructive: false"})
    assert lint(tmp_path) == []
    p = minimal(tmp_path, **{"with: {incremental: true}": "destructive: true"})
    assert (
        only_issue(tmp_path) == f"{p}:16: scenarios[0].steps[0].destructive: the catalogue says "
        "snapshot-disks is not destructive"
    )


def test_bad_message_regex(tmp_path: Path) -> None:
    p = minimal(
        tmp_path,
        **{
            "    source: instance-view\n    status_code: OSState/generalized": (
                "    source: activity-log\n    message: 'gen(eralized'"
            )
        },
    )
    assert only_issue(tmp_path).startswith(
        f"{p}:9: signals[0].message: Value error, not a valid regular expression"
    )


def test_file_stem_must_equal_id(tmp_path: Path) -> None:
    p = write(tmp_path, "misnamed", MINIMAL.format(id="test-pb", article="A"))
    assert only_issue(tmp_path) == f"{p}:1: id: id 'test-pb' differs from the file name 'misnamed'"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "broken", "id: broken\ntitle: [unclosed\n")
    issue = only_issue(tmp_path)
    assert issue.startswith(f"{p}:3: invalid YAML")


def test_article_claimed_by_two_playbooks(tmp_path: Path) -> None:
    minimal(tmp_path, "first", article="Same_Article")
    second = minimal(tmp_path, "second", article="Same_Article")
    assert only_issue(tmp_path).startswith(
        f"{second}: articles[0]: articleId 'Same_Article' is also claimed by playbook 'first'"
    )
    with pytest.raises(PlaybookError, match="also claimed"):
        load_playbooks(tmp_path)


def test_articles_missing_from_the_corpus(tmp_path: Path) -> None:
    p = minimal(tmp_path, article="Test_quirky")
    assert only_issue_with_corpus(tmp_path) == (
        f"{p}:3: articles[0]: articleId 'Test_quirky' is not in the corpus {FIXTURE_CORPUS}; "
        "the corpus spells it 'Test_Quirky'"
    )
    minimal(tmp_path, article="Test_Quirky")
    assert lint(tmp_path, FIXTURE_CORPUS) == []


def only_issue_with_corpus(folder: Path) -> str:
    issues = lint(folder, FIXTURE_CORPUS)
    assert len(issues) == 1, [str(i) for i in issues]
    return str(issues[0])


def test_load_playbook_reports_the_count_of_further_errors(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"when: [sig-a]": "when: [x, y]"})
    with pytest.raises(
        PlaybookError, match=r"when\[0\]: unknown signal 'x'.* \(and 1 more; run 'invoke playbooks"
    ):
        load_playbook(p)


def test_missing_playbooks_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such playbooks folder"):
        lint(tmp_path / "nope")


def test_field_path_drops_union_tags() -> None:
    assert field_path(("scenarios", 0, "steps", 1, "run", "with")) == "scenarios[0].steps[1].with"
    assert field_path(("scenarios", 0, "steps", 1, "run")) == "scenarios[0].steps[1].run"
    assert field_path(("signals", 2, "activity-log", "message")) == "signals[2].message"


def test_unknown_signal_in_detect_unless(tmp_path: Path) -> None:
    p = minimal(tmp_path, **{"detect: [sig-a]": "detect: [sig-a]\ndetect_unless: [sig-b]"})
    assert only_issue(tmp_path).startswith(f"{p}:")
    assert "detect_unless[0]: unknown signal 'sig-b'; declared: sig-a" in only_issue(tmp_path)
