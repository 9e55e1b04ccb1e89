"""Unit tests of the SelfHelp article parser on small handwritten articles, one quirk at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.articles import (
    Article,
    fill_placeholders,
    find_article,
    load_corpus,
    parse_article,
    read_article,
    read_manifest,
    render_article,
    to_markdown,
)
from runbooks.errors import ArticleError, UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "articles"


def make(
    props: str = "",
    body: str = "# Title\n<!--issueDescription-->\nA finding.\n<!--/issueDescription-->\n",
    *,
    article_id: str = "Test_Article",
) -> str:
    """A minimal well-formed article with extra property lines and a body."""
    return (
        "<properties\n"
        f'\tpageTitle="Test"\n\tarticleId="{article_id}"\n\tdiagnosticScenario="StartFailure"\n'
        f"{props}"
        "/>\n"
        f"{body}"
    )


def problems(a: Article) -> list[str]:
    return [w.problem for w in a.warnings]


# --- file level -------------------------------------------------------------------------------------


def test_well_formed_article_parses_strict_without_warnings() -> None:
    a = parse_article(make('\tresourceTags="windows, linux"\n\tproductPesIds="1,2, 3"\n'), strict=True)
    assert a.article_id == "Test_Article"
    assert a.diagnostic_scenario == "StartFailure"
    assert a.warnings == ()
    assert a.property_list("ProductPesIds") == ["1", "2", "3"]
    assert a.property_list("resourcetags") == ["windows", "linux"]
    assert a.issue_description == "A finding."
    assert a.title == "Title"


@pytest.mark.parametrize("prefix", ["\ufeff", "\ufeff\ufeff"], ids=["bom", "double-bom"])
def test_boms_are_stripped(prefix: str) -> None:
    a = parse_article(prefix + make(), strict=True)
    assert a.article_id == "Test_Article"
    assert not a.text.startswith("\ufeff")


@pytest.mark.parametrize("eol", ["\r\n", "\r"], ids=["crlf", "lone-cr"])
def test_crlf_and_lone_cr_are_normalised_and_lines_kept(eol: str) -> None:
    lf = parse_article(make(), strict=True)
    other = parse_article(make().replace("\n", eol), strict=True)
    assert "\r" not in other.text
    assert other.model_dump(exclude={"path"}) == lf.model_dump(exclude={"path"})
    assert other.section("issueDescription") is not None
    assert other.headings[0].line == 6


def test_blank_lines_before_properties_are_fine_but_text_is_a_warning() -> None:
    assert parse_article("\n\t\n" + make(), strict=True).warnings == ()
    a = parse_article("stray words\n" + make())
    assert problems(a) == ["text before the <properties block"]
    with pytest.raises(ArticleError, match=r"^x\.md:1: text before the <properties block$"):
        parse_article("stray words\n" + make(), path="x.md", strict=True)


def test_no_properties_block() -> None:
    a = parse_article("# Just a title\n")
    assert a.article_id == ""
    assert "no <properties ... /> block" in problems(a)
    assert "no articleId property" in problems(a)
    with pytest.raises(ArticleError, match="no <properties"):
        parse_article("# Just a title\n", strict=True)


def test_invalid_utf8_is_replaced_and_warned(tmp_path: Path) -> None:
    f = tmp_path / "bad.md"
    f.write_bytes(make().encode() + b"caf\xe9\n")
    a = read_article(f)
    assert problems(a)[0] == "not valid UTF-8"
    assert "\ufffd" in a.text
    with pytest.raises(ArticleError, match=r"bad\.md: not valid UTF-8"):
        read_article(f, strict=True)


# --- the properties block ---------------------------------------------------------------------------


def test_property_names_are_case_insensitive() -> None:
    text = '<properties\n\tArticleId="A1"\n\tDIAGNOSTICSCENARIO="X"\n\tService="microsoft.compute"\n/>\n# T\n'
    a = parse_article(text)
    assert (a.article_id, a.diagnostic_scenario) == ("A1", "X")
    assert a.properties["service"] == "microsoft.compute"


@pytest.mark.parametrize(
    ("typo", "meant"), [("supportToicIds", "supporttopicids"), ("infoBubbleTest", "infobubbletext")]
)
def test_known_typos_are_read_as_the_meant_property(typo: str, meant: str) -> None:
    text = make(f'\t{typo}="1, 2"\n')
    a = parse_article(text)
    assert a.property_list(meant) == ["1", "2"]
    assert problems(a) == [f"misspelled property {typo!r} read as {meant!r}"]
    with pytest.raises(ArticleError, match=rf"^a\.md:5: misspelled property '{typo}'"):
        parse_article(text, path="a.md", strict=True)


def test_angle_bracket_inside_value_does_not_end_the_block() -> None:
    a = parse_article(make('\tdescription="Portal > Settings > Size"\n'), strict=True)
    assert a.properties["description"] == "Portal > Settings > Size"
    assert a.body.startswith("\n# Title")


def test_block_may_close_on_the_last_attribute_line() -> None:
    text = (
        '<properties\n\tarticleId="A2"\n\tresourceRequired="True" />\n'
        "# T\n<!--issueDescription-->x<!--/issueDescription-->"
    )
    a = parse_article(text, strict=True)
    assert a.properties["resourcerequired"] == "True"
    assert a.headings[0].title == "T"


def test_single_quoted_value_may_contain_double_quotes_and_trailing_whitespace_is_ignored() -> None:
    a = parse_article(make('\tpageTitle2=\'Say "hi"\'\t \n\tdisplayOrder=""\t\n'), strict=True)
    assert a.properties["pagetitle2"] == 'Say "hi"'
    assert a.properties["displayorder"] == ""


def test_unterminated_quote_ends_at_end_of_line() -> None:
    text = make('\tms.author="someone\n\townershipId="Owner"\n')
    a = parse_article(text)
    assert a.properties["ms.author"] == "someone"
    assert a.properties["ownershipid"] == "Owner"
    assert problems(a) == ["unterminated quote in property 'ms.author' (value ends at end of line)"]
    with pytest.raises(ArticleError, match=r":5: unterminated quote"):
        parse_article(text, strict=True)


@pytest.mark.parametrize("junk", [",", '"', "\u200b"], ids=["comma", "quote", "zwsp"])
def test_stray_characters_in_block_are_skipped(junk: str) -> None:
    a = parse_article(make(f'\t{junk}\n\townershipId="Owner"\n'))
    assert a.properties["ownershipid"] == "Owner"
    assert problems(a) == [f"stray {junk!r} in the properties block"]


def test_missing_block_end_recovers_at_first_non_attribute_line() -> None:
    text = '<properties\n\tarticleId="A3"\n# Title\n<!--issueDescription-->x<!--/issueDescription-->\n'
    a = parse_article(text)
    assert a.article_id == "A3"
    assert problems(a) == ["properties block not closed with '/>'"]
    assert [h.title for h in a.headings] == ["Title"]


def test_duplicate_property_keeps_the_first() -> None:
    a = parse_article(make('\tpagetitle="Second"\n'))
    assert a.properties["pagetitle"] == "Test"
    assert problems(a) == ["duplicate property 'pagetitle' (first value kept)"]


def test_unquoted_value_is_read_with_a_warning() -> None:
    a = parse_article(make("\tselfHelpType=rca\n"))
    assert a.self_help_type == "rca"
    assert problems(a) == ["property 'selfHelpType' has an unquoted value"]


# --- marker sections --------------------------------------------------------------------------------


def test_restart_layout_nests_sections() -> None:
    a = read_article(FIXTURES / "restart-sample.md", strict=True)
    assert [s.name for s in a.sections] == [
        "issueDescription",
        "rcaDescription",
        "recommendedActions",
        "salutation",
    ]
    rca = a.section("rcaDescription")
    assert rca is not None
    assert [c.name for c in rca.children] == ["resolutionDetails", "additionalInfo"]
    resolution = a.section("resolutionDetails")
    assert resolution is not None and "It came back." in resolution.text and resolution.closed
    assert a.self_help_type == "rca"  # "RCA" in the file


def test_closing_marker_without_opener_opens_the_section() -> None:
    body = "# T\n<!--/issueDescription-->\nThe finding.\n<!--/issueDescription-->\nAfter.\n"
    a = parse_article(make(body=body))
    assert a.issue_description == "The finding."
    assert problems(a) == ["<!--/issueDescription--> without an opening marker (read as the opener)"]


def test_unclosed_marker_runs_to_end_of_text() -> None:
    body = "# T\n<!--issueDescription-->x<!--/issueDescription-->\n<!--recommendedActions-->\n## Docs\n"
    a = parse_article(make(body=body))
    ra = a.section("recommendedActions")
    assert ra is not None and not ra.closed and "## Docs" in ra.text
    assert problems(a) == ["<!--recommendedActions--> never closed"]
    with pytest.raises(ArticleError, match=r":8: <!--recommendedActions--> never closed"):
        parse_article(make(body=body), strict=True)


def test_inner_section_left_open_is_closed_by_its_parent() -> None:
    body = (
        "# T\n<!--issueDescription-->x<!--/issueDescription-->\n"
        "<!--rcaDescription-->\n<!--resolutionDetails-->\nfix\n<!--/rcaDescription-->\n"
    )
    a = parse_article(make(body=body))
    rca = a.section("rcaDescription")
    assert rca is not None and rca.closed
    assert [(c.name, c.closed) for c in rca.children] == [("resolutionDetails", False)]
    assert problems(a) == ["<!--resolutionDetails--> not closed before <!--/rcaDescription-->"]


def test_stray_second_closing_marker_is_a_warning() -> None:
    body = "# T\n<!--issueDescription-->x<!--/issueDescription-->\n<!--/issueDescription-->\n"
    assert problems(parse_article(make(body=body))) == ["stray closing marker <!--/issueDescription-->"]


def test_unknown_comments_are_ignored() -> None:
    body = (
        '# T\n<!-- for "other" support topic -->\n<!--- <!--issueDescription--> old -->\n'
        "<!--issueDescription-->real<!--/issueDescription-->\n"
    )
    a = parse_article(make(body=body))
    assert a.issue_description == "real"


def test_missing_issue_description_and_h1_are_warnings() -> None:
    a = parse_article(make(body="## Only a subheading\n"))
    assert problems(a) == ["no <!--issueDescription--> section", "no H1 heading"]


def test_remediation_text_stops_at_recommended_documents() -> None:
    a = read_article(FIXTURES / "start-generalized.md")
    assert "Build it again" in a.remediation_text
    assert "More reading" not in a.remediation_text
    assert "refused to boot" not in a.remediation_text


# --- placeholders -----------------------------------------------------------------------------------


def test_placeholders_pair_case_insensitively_and_trim_names() -> None:
    body = (
        "# T\n<!--issueDescription-->\n<!--$VMName-->[vmname]<!--/$vmname--> and "
        "<!--$ Scenario-->Scenario<!--/$Scenario--> at <!--$StartTime--> StartTime <!--/$StartTime-->\n"
        "<!--/issueDescription-->\n"
    )
    a = parse_article(make(body=body), strict=True)
    assert [(p.name, p.default) for p in a.placeholders] == [
        ("VMName", "[vmname]"),
        ("Scenario", "Scenario"),
        ("StartTime", " StartTime "),
    ]
    assert a.placeholder_defaults == {"VMName": "[vmname]", "Scenario": "Scenario", "StartTime": "StartTime"}
    assert a.placeholders[0].line == 8


def test_placeholders_in_headings_and_tables() -> None:
    body = (
        "# Machine **<!--$vmname-->[vmname]**<!--/$vmname--> failed\n"
        "<!--issueDescription-->x<!--/issueDescription-->\n"
        "|Key|Value|\n|---|---|\n|Region|<!--$Region-->Region<!--/$Region-->|\n"
    )
    a = parse_article(make(body=body), strict=True)
    assert a.headings[0].title == "Machine [vmname] failed"
    assert "<!--$vmname-->" in a.headings[0].text
    assert {p.name for p in a.placeholders} == {"vmname", "Region"}
    out = render_article(a, {"region": "westeurope", "vmname": "web01"})
    assert "Machine web01 failed" in out
    assert "westeurope" in out


def test_unbalanced_placeholders_are_warnings() -> None:
    body = "# T\n<!--issueDescription-->\n<!--$open-->x and <!--/$lonely-->\n<!--/issueDescription-->\n"
    a = parse_article(make(body=body))
    assert problems(a) == [
        "closing placeholder marker 'lonely' without an opening one",
        "placeholder 'open' never closed",
    ]
    assert a.placeholders == ()


def test_fill_placeholders_value_else_trimmed_default() -> None:
    text = "<!--$a-->A<!--/$a--> <!--$B--> B <!--/$b--> <!--$c-->C<!--/$c-->"
    assert fill_placeholders(text, {"A": "1", "c": ""}) == "1 B "


def test_straddling_emphasis_keeps_its_closing_marks() -> None:
    a = read_article(FIXTURES / "start-generalized.md", strict=True)
    assert a.placeholder_defaults["vmname"] == "[vmname]"
    md = to_markdown(a, {"vmname": "web01"})
    assert "machine **web01** today" in md
    assert "The machine **web01** refused" in md
    assert "**" not in render_article(a, {"vmname": "web01"})


# --- headings, links, rendering ---------------------------------------------------------------------


def test_headings_inside_code_fences_are_not_headings() -> None:
    body = "# Real\n```\n# a shell comment\n```\n~~~\n# another\n~~~\n## Second\n"
    a = parse_article(make(body=body))
    assert [(h.level, h.title) for h in a.headings] == [(1, "Real"), (2, "Second")]


def test_links_and_blade_links() -> None:
    a = read_article(FIXTURES / "start-generalized.md")
    assert [(lk.text, lk.is_blade) for lk in a.links] == [
        ("the guide", False),
        ("reset it", True),
        ("More reading", False),
    ]
    blade = a.links[1]
    assert blade.blade == "VirtualMachineRedeploy"
    assert blade.tokens == ("resourceId",)
    assert blade.line == 25


def test_render_fills_runtime_tokens_of_blade_links() -> None:
    a = read_article(FIXTURES / "start-generalized.md")
    md = to_markdown(a, {"resourceId": "/subscriptions/s/vm1"})
    assert "VirtualMachineRedeploy.id./subscriptions/s/vm1)" in md


def test_render_keeps_non_html_angle_brackets_and_drops_comments() -> None:
    a = read_article(FIXTURES / "quirky.md")
    out = render_article(a, {})
    assert "<drive letter>" in out
    assert "<!--" not in out
    assert "Closing form used as the opener for Scenario." in out


def test_render_uses_defaults_without_values_and_br_as_line_break() -> None:
    a = read_article(FIXTURES / "start-generalized.md")
    out = render_article(a, {})
    assert "Findings for machine [vmname] today" in out
    assert "refused to boot at StartTime." in out
    assert "<br>" not in out


# --- corpus helpers ---------------------------------------------------------------------------------


def test_load_corpus_follows_the_manifest() -> None:
    arts = load_corpus(FIXTURES)
    assert [a.article_id for a in arts] == [r["articleId"] for r in read_manifest(FIXTURES)]
    assert all(a.path and Path(a.path).is_file() for a in arts)


def test_load_corpus_without_manifest_reads_every_md(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text(make(article_id="B"))
    (tmp_path / "a.md").write_text(make(article_id="A"))
    assert [a.article_id for a in load_corpus(tmp_path)] == ["A", "B"]


def test_load_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such articles folder"):
        load_corpus(tmp_path / "missing")
    (tmp_path / "manifest.tsv").write_text("file\tarticleId\ngone.md\tX\n")
    with pytest.raises(UsageError, match=r"gone\.md: listed in .*manifest\.tsv but missing"):
        load_corpus(tmp_path)


def test_load_corpus_strict_names_file_and_line() -> None:
    with pytest.raises(ArticleError, match=r"quirky\.md:1: text before the <properties block"):
        load_corpus(FIXTURES, strict=True)


def test_find_article() -> None:
    arts = load_corpus(FIXTURES)
    assert find_article(arts, "Test_Quirky").article_id == "Test_Quirky"
    assert find_article(arts, "test_quirky").article_id == "Test_Quirky"
    with pytest.raises(UsageError, match="unknown article id 'Test_Quirk'; did you mean Test_Quirky"):
        find_article(arts, "Test_Quirk")
