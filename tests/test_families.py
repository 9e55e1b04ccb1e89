"""The family table (every RCA articleId → its family), the family catalogue and its classes, coverage, and
``invoke articles.coverage`` on the real corpus."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from runbooks import families as fam
from runbooks.articles import Article, load_corpus, read_manifest
from runbooks.playbook import load_playbooks

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CLASSIFICATION = SHARED / "reference" / "rca-classification.tsv"
CORPUS = SHARED / "articles"
FIXTURES = Path(__file__).parent / "fixtures" / "articles"
INVOKE = Path(sys.executable).parent / "invoke"

COUNTS = {
    "INFO_PLATFORM": 89, "PICK_SKU": 22, "IMAGE_PREP": 14, "INFO_GUESTOS": 12, "QUOTA": 9, "RECREATE": 8,
    "ALLOC": 7, "SIZE_NOT_IN_CLUSTER": 6, "RETRY_REDEPLOY": 6, "NIC": 6, "INFO_OTHER": 5, "BILLING": 5,
    "MARKET_PLAN": 3, "IOPS": 2, "BOOTDIAG": 2, "POLICY": 1, "MARKET_TERMS": 1, "LOCK": 1,
}
CLASS_OF = {
    **dict.fromkeys(["RECREATE", "ALLOC", "SIZE_NOT_IN_CLUSTER", "RETRY_REDEPLOY", "NIC", "BOOTDIAG", "IOPS",
                     "MARKET_TERMS", "LOCK"], "remediate"),
    **dict.fromkeys(["PICK_SKU", "QUOTA", "MARKET_PLAN"], "recommend"),
    **dict.fromkeys(["POLICY", "IMAGE_PREP", "INFO_PLATFORM", "INFO_GUESTOS", "BILLING", "INFO_OTHER"], "explain"),
}
TOTAL_LINE = re.compile(
    r"(\d+)/(\d+) articles claimed by a playbook; remediate (\d+)/(\d+), recommend (\d+)/(\d+), explain (\d+)/(\d+)"
    r"(?:, unclassified (\d+)/(\d+))?"
)

needs_shared = pytest.mark.shared


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOKS_")}
    return subprocess.run([str(INVOKE), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


# --- the table and the catalogue (shipped with the package) --------------------------------------


def test_the_table_holds_199_articles_in_18_families() -> None:
    table = fam.table()
    assert len(table) == 199
    assert Counter(table.values()) == COUNTS
    assert len({a.lower() for a in table}) == 199


def test_the_catalogue_names_each_family_once_with_its_class() -> None:
    catalogue = fam.families()
    assert {f.id: f.class_ for f in catalogue} == CLASS_OF
    assert len(catalogue) == len(CLASS_OF) == 18
    # remediate families first, then recommend, then explain: the order the coverage prints
    assert [f.class_ for f in catalogue] == sorted((f.class_ for f in catalogue), key=fam.CLASSES.index)
    for f in catalogue:
        # one line each, short enough that a coverage line (41 columns before it) fits 100 columns
        assert f.description and "\n" not in f.description and len(f.description) <= 59, f
        assert fam.family(f.id) is f
    with pytest.raises(KeyError):
        fam.family("recreate")


def test_family_of_ignores_case() -> None:
    assert fam.family_of("Startfailure_GeneralizedImage") == "RECREATE"
    assert fam.family_of("STARTFAILURE_generalizedimage") == "RECREATE"
    assert fam.family_of("vma_rca_software_nodecrash_guestos_ubuntu") == "INFO_GUESTOS"
    assert fam.family_of("DeploymentFailure_RCA-resource-locked") == "LOCK"
    assert fam.family_of("No_Such_Article") is None
    assert fam.family_of("") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("articleId\tfamily\nA\tNO_SUCH\n", "t.tsv:2: unknown family 'NO_SUCH'"),
        ("# c\narticleId\tfamily\nA\tLOCK\na\tQUOTA\n", "t.tsv:4: articleId 'a' already listed on line 3"),
        ("articleId\tfamily\nA\tLOCK\textra\n", "t.tsv:2: expected 'articleId<TAB>family'"),
        ("articleId\tfamily\n A\tLOCK\n", "t.tsv:2: expected 'articleId<TAB>family'"),
        ("id\tcategory\nA\tLOCK\n", "t.tsv:1: expected the header 'articleId<TAB>family'"),
        ("# only a comment\n", "t.tsv: no header 'articleId<TAB>family'"),
    ],
)
def test_read_table_refuses_a_malformed_table(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as e:
        fam.read_table(text, "t.tsv")
    assert str(e.value) == problem


def test_read_table_skips_comments_and_keeps_the_spelling() -> None:
    text = "# where it came from\narticleId\tfamily\n\nSome_Article\tLOCK\nother\tQUOTA\n"
    assert fam.read_table(text) == {"Some_Article": "LOCK", "other": "QUOTA"}


def test_the_table_is_package_data_of_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["runbooks"]
    table = REPO / "runbooks" / fam.TABLE
    assert table.is_file()
    assert any(table in set((REPO / "runbooks").glob(p)) for p in patterns), patterns
    comments = [line for line in table.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert "shared/reference/rca-classification.tsv" in " ".join(comments)  # where the assignment came from


def test_each_playbook_claims_articles_of_one_class() -> None:
    """A playbook remediates, recommends or explains: the articles it claims all have a family, of one class."""
    playbooks = load_playbooks()
    for pb in playbooks.values():
        families = {a: fam.family_of(a) for a in pb.articles}
        assert None not in families.values(), f"{pb.id} claims articles in no family: {families}"
        classes = {fam.family(f).class_ for f in families.values() if f is not None}
        assert len(classes) == 1, f"{pb.id} claims articles of classes {sorted(classes)}: {families}"
        assert len({a.lower() for a in pb.articles}) == len(pb.articles), f"{pb.id} lists an article twice"
    assert {fam.family_of(a) for a in playbooks["generalized-vm"].articles} == {"RECREATE"}
    owners = Counter(a.lower() for pb in playbooks.values() for a in pb.articles)
    assert [a for a, n in owners.items() if n > 1] == []


# --- coverage --------------------------------------------------------------------------------------


def test_coverage_of_the_fixture_corpus() -> None:
    cov = fam.coverage(load_corpus(FIXTURES), load_playbooks())
    rows = {row.family: row for row in cov.families}
    assert list(rows) == [f.id for f in fam.families()]
    assert rows["RECREATE"].claimed == {"Startfailure_GeneralizedImage": "generalized-vm"}
    assert rows["RECREATE"].unclaimed == ()
    assert all(row.total == 0 for name, row in rows.items() if name != "RECREATE")
    # the two made-up ids are in no family
    assert cov.unclassified.unclaimed == ("Test_Quirky", "VMA_RCA_Test_Restart")
    assert cov.unclassified.claimed == {}
    assert cov.rows[-1] is cov.unclassified
    assert (cov.claimed, cov.total) == (1, 3)
    assert cov.by_class() == {"remediate": (1, 1), "recommend": (0, 0), "explain": (0, 0)}


def test_coverage_without_playbooks_claims_nothing() -> None:
    cov = fam.coverage(load_corpus(FIXTURES), [])
    assert cov.claimed == 0
    assert next(r for r in cov.families if r.family == "RECREATE").unclaimed == ("Startfailure_GeneralizedImage",)


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    if not (CORPUS / "manifest.tsv").is_file():
        pytest.skip(f"../shared/articles not found: {CORPUS} (the family checks need the shared corpus)")
    return load_corpus(CORPUS)


@needs_shared
def test_the_table_agrees_with_the_shared_classification() -> None:
    if not CLASSIFICATION.is_file():
        pytest.skip(f"../shared/reference not found: {CLASSIFICATION} (the source of the family table)")
    with open(CLASSIFICATION, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 199
    assert {r["articleId"]: r["category"] for r in rows} == dict(fam.table())


@needs_shared
def test_every_rca_article_of_the_corpus_has_a_family(corpus: list[Article]) -> None:
    rca = [r["articleId"] for r in read_manifest(CORPUS) if r["selfHelpType"].lower() == "rca"]
    assert len(rca) == 199
    assert [a for a in rca if fam.family_of(a) is None] == []
    assert {a.lower() for a in rca} == {a.lower() for a in fam.table()}
    assert all(a.self_help_type == "rca" for a in corpus)


@needs_shared
def test_coverage_of_the_real_corpus_accounts_for_every_article(corpus: list[Article]) -> None:
    playbooks = load_playbooks()
    cov = fam.coverage(corpus, playbooks)
    assert cov.unclassified.total == 0
    assert cov.rows == cov.families
    assert {row.family: row.total for row in cov.families} == COUNTS
    assert cov.total == 199
    # every article exactly once, in the family of the table
    placed = [(a, row.family) for row in cov.families for a in (*row.claimed, *row.unclaimed)]
    assert sorted(a for a, _ in placed) == sorted(a.article_id for a in corpus)
    assert all(fam.family_of(a) == f for a, f in placed)
    # claimed = the articles the playbooks name (all in the corpus), each by its own playbook
    claimed = {a: pb for row in cov.families for a, pb in row.claimed.items()}
    assert claimed == {a: pb.id for pb in playbooks.values() for a in pb.articles}
    assert cov.claimed == len(claimed) >= 12
    assert sum(t for _, t in cov.by_class().values()) == 199
    assert {c: t for c, (_, t) in cov.by_class().items()} == {"remediate": 39, "recommend": 34, "explain": 126}


@needs_shared
def test_coverage_task_names_every_family_and_its_class(corpus: list[Article]) -> None:
    r = inv("articles.coverage")
    assert r.returncode == 0, r.stderr
    cov = fam.coverage(corpus, load_playbooks())
    lines = r.stdout.splitlines()
    heads = [line for line in lines if not line.startswith(" ")]
    total = heads.pop()
    assert [h.split()[:3] for h in heads] == [
        [row.family, row.class_, f"{len(row.claimed)}/{row.total}"] for row in cov.families
    ]
    assert [h.split()[0] for h in heads] == [f.id for f in fam.families()]
    assert "(unclassified)" not in r.stdout
    # under each family, indented, exactly its unclaimed articleIds
    listed: dict[str, list[str]] = {}
    under: list[str] = []
    for line in lines[:-1]:
        if line.startswith("    "):
            under.append(line.strip())
        else:
            under = listed.setdefault(line.split()[0], [])
    assert listed == {row.family: list(row.unclaimed) for row in cov.families}
    m = TOTAL_LINE.fullmatch(total)
    assert m is not None, total
    by_class = cov.by_class()
    assert [int(g) for g in m.groups()[:8]] == [
        cov.claimed, 199, *by_class["remediate"], *by_class["recommend"], *by_class["explain"]
    ]
    assert m.group(9) is None
    # lines fit 100 columns, but for an articleId that is itself too long
    assert [line for line in lines if len(line) > 100 and len(line.strip()) + 4 <= 100] == []


@needs_shared
def test_coverage_task_all_lists_each_article_with_its_playbook(corpus: list[Article]) -> None:
    r = inv("articles.coverage", "--all")
    assert r.returncode == 0, r.stderr
    cov = fam.coverage(corpus, load_playbooks())
    items = [line.split() for line in r.stdout.splitlines() if line.startswith("    ")]
    assert all(len(item) == 2 for item in items), items
    expected = {a: "-" for row in cov.families for a in row.unclaimed}
    expected.update({a: pb for row in cov.families for a, pb in row.claimed.items()})
    assert dict(items) == expected and len(items) == 199
    assert ["Startfailure_GeneralizedImage", "generalized-vm"] in items


@needs_shared
def test_coverage_task_json_is_only_json_with_the_same_data(corpus: list[Article]) -> None:
    r = inv("articles.coverage", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # the whole output: no text line around it
    assert data == fam.coverage(corpus, load_playbooks()).to_dict()
    assert list(data["families"]) == [f.id for f in fam.families()]
    assert {k: v["class"] for k, v in data["families"].items()} == CLASS_OF
    assert {k: v["total"] for k, v in data["families"].items()} == COUNTS
    assert data["total"] == 199
    assert data["unclassified"] == {"class": None, "description": fam.coverage([], []).unclassified.description,
                                    "total": 0, "claimed": {}, "unclaimed": []}
    assert data["families"]["RECREATE"]["claimed"]["Startfailure_GeneralizedImage"] == "generalized-vm"
