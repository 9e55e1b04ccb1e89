"""Property tests: no input makes the article parser (or the renderer) crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbooks.articles import Article, fill_placeholders, parse_article, render_article
from runbooks.errors import ArticleError

NAMES = st.sampled_from(
    ["articleId", "ArticleId", "diagnosticScenario", "supportToicIds", "pageTitle", "ms.author", "x", ""]
)
VALUES = st.text(alphabet=st.sampled_from(list("ab >/<'\",\u200b\t-=")), max_size=12)
PIECES = st.sampled_from(
    [
        "<!--issueDescription-->",
        "<!--/issueDescription-->",
        "<!--rcaDescription-->",
        "<!--/rcaDescription-->",
        "<!--resolutionDetails-->",
        "<!--/resolutionDetails-->",
        "<!--recommendedActions-->",
        "<!--$vmname-->",
        "<!--/$VMName-->",
        "<!--$ Scenario-->",
        "<!--/$Scenario-->",
        "<!-- note -->",
        "<!--",
        "-->",
        "# Title",
        "## **Recommended Steps**",
        "```",
        "~~~",
        "[t](https://x)",
        "[b](data-blade:A.B.id.$r)",
        "**",
        "<br>",
        "<BCD>",
        "|a|b|",
        "|---|---|",
        "> quoted",
        "* item",
        "1. step",
        "\n",
        "\r\n",
        "\r",
        "\ufeff",
        "text",
        " ",
        "\t",
        "/>",
        "<properties",
        ">",
    ]
)


def _check(text: str) -> None:
    article = parse_article(text)
    assert isinstance(article, Article)
    try:
        parse_article(text, strict=True)
    except ArticleError as e:
        assert str(e)  # strict mode may only refuse with an ArticleError naming the problem
    fill_placeholders(article.body, {"vmname": "web01"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_any_text_parses_leniently(text: str) -> None:
    _check(text)


@st.composite
def article_like(draw: st.DrawFn) -> str:
    """Text shaped like an article: BOMs, a properties block with odd attributes, marker soup."""
    bom = draw(st.sampled_from(["", "\ufeff", "\ufeff\ufeff"]))
    before = draw(st.sampled_from(["", "\n", "\t", "note\n"]))
    attrs = draw(
        st.lists(st.tuples(NAMES, VALUES, st.sampled_from(['"', "'", ""]), st.booleans()), max_size=6)
    )
    lines = [f"\t{n}={q}{v}{q if closed else ''}" for n, v, q, closed in attrs]
    end = draw(st.sampled_from(["/>", " />", "", ">"]))
    body = "".join(draw(st.lists(PIECES, max_size=40)))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return bom + before + "<properties" + eol + eol.join(lines) + end + eol + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(article_like())
def test_article_like_text_parses_and_renders(text: str) -> None:
    _check(text)
    render_article(parse_article(text), {"vmname": "web01", "Scenario": "s"})


@pytest.mark.parametrize("text", ["", "<properties", "<properties />", "<!--", "<!--$a-->", "\r", "\ufeff"])
def test_degenerate_inputs(text: str) -> None:
    _check(text)
    assert parse_article(text).warnings  # each is missing something a real article has
