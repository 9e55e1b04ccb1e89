"""Tasks on the data: the SelfHelp article corpus (articles.*) and the playbooks (playbooks.*)."""

from __future__ import annotations

from typing import Any

from invoke import Collection, Context, Exit

from tasks._common import print_json, task, user_errors

_DIR_HELP = "articles folder (default: env RUNBOOKS_ARTICLES, else ../shared/articles next to the repo)"


def _corpus(dir_: str) -> list[Any]:  # list[Article]; the import is local
    """Parse the articles folder leniently (a broken article is shown with its warnings, not fatal)."""
    from pathlib import Path

    from runbooks.articles import default_corpus_dir, load_corpus

    return load_corpus(Path(dir_) if dir_ else default_corpus_dir())


def _set_values(pairs: list[str]) -> dict[str, str]:
    """``["vmname=web01", ...]`` → ``{"vmname": "web01"}``; UsageError on a pair without ``=``."""
    from runbooks.errors import UsageError

    values: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--set {pair!r}: expected NAME=VALUE, e.g. --set vmname=web01")
        values[name.strip()] = value
    return values


@task(help={"scenario": "only this diagnosticScenario (case-insensitive)", "json": "print JSON",
            "dir": _DIR_HELP})
def articles_list(c: Context, scenario: str = "", json_: bool = False, dir_: str = "") -> None:
    """List the corpus's articles: articleId, diagnosticScenario, playbook, title."""
    from runbooks.playbook import load_playbooks, playbook_for_article

    with user_errors(json_):
        playbooks = load_playbooks()
        rows = [
            {"articleId": a.article_id, "diagnosticScenario": a.diagnostic_scenario,
             "playbook": (pb.id if (pb := playbook_for_article(a.article_id, playbooks)) else None),
             "title": a.title, "file": a.path, "warnings": [str(w) for w in a.warnings]}
            for a in _corpus(dir_)
            if not scenario or a.diagnostic_scenario.lower() == scenario.lower()
        ]
        if json_:
            print_json(rows)
            return
        width = max((len(r["articleId"]) for r in rows), default=0)
        for r in rows:
            playbook = r["playbook"] or "-"
            print(f"{r['articleId']:<{width}}  {r['diagnosticScenario']:<20}  {playbook:<16}  {r['title']}")
        print(f"{len(rows)} articles")


@task(
    iterable=["set_"],
    help={"id": "articleId (exact; case-insensitive if unambiguous)",
          "set": "placeholder value NAME=VALUE (repeatable), e.g. --set vmname=web01", "dir": _DIR_HELP},
)
def articles_show(c: Context, id_: str, set_: list[str] | None = None, dir_: str = "") -> None:
    """Show one article as the portal would, placeholders filled from --set (else their defaults)."""
    from runbooks.articles import find_article, render_article
    from runbooks.errors import UsageError
    from runbooks.playbook import load_playbooks, playbook_for_article

    with user_errors():
        values = _set_values(set_ or [])
        article = find_article(_corpus(dir_), id_)
        known = {p.key for p in article.placeholders}
        unknown = [k for k in values if k.lower() not in known]
        if unknown:
            names = ", ".join(article.placeholder_defaults) or "none"
            raise UsageError(f"--set {unknown[0]}: no such placeholder in {article.article_id}; has {names}")
        pb = playbook_for_article(article.article_id, load_playbooks())
        print(f"{article.article_id}  ({article.path})")
        print(f"scenario: {article.diagnostic_scenario}")
        print(f"playbook: {pb.id + ' (' + ', '.join(s.id for s in pb.scenarios) + ')' if pb else 'none'}")
        for w in article.warnings:
            print(f"warning: {w}")
        print()
        print(render_article(article, values), end="")


@task(help={"json": "print only JSON: the same data, with the playbook of each claimed article",
            "all": "also list the claimed articles, each with the playbook that claims it (default: only the "
                   "unclaimed ones)",
            "dir": _DIR_HELP})
def articles_coverage(c: Context, json_: bool = False, all_: bool = False, dir_: str = "") -> None:
    """Which articles a playbook claims, per family (class remediate, recommend or explain), and which remain."""
    from runbooks.families import coverage

    with user_errors(json_):
        cov = coverage(_corpus(dir_))
        if json_:
            print_json(cov.to_dict())
            return
        family_width = max(len(row.family) for row in cov.rows)
        for row in cov.rows:
            count = f"{len(row.claimed):>3}/{row.total:<3}"
            print(f"{row.family:<{family_width}}  {row.class_ or '-':<9}  {count}  {row.description}")
            if not all_:
                for article_id in row.unclaimed:
                    print(f"    {article_id}")
                continue
            # each article with its playbook ("-": none), aligned as far as 100 columns allow
            playbook_width = max((len(p) for p in row.claimed.values()), default=1)
            listed = sorted([*row.claimed, *row.unclaimed], key=lambda a: (a.lower(), a))
            id_width = min(max((len(a) for a in listed), default=0), 100 - 4 - 2 - playbook_width)
            for article_id in listed:
                print(f"    {article_id:<{id_width}}  {row.claimed.get(article_id, '-')}")
        classes = ", ".join(f"{name} {n}/{t}" for name, (n, t) in cov.by_class().items())
        if cov.unclassified.total:
            classes += f", unclassified {len(cov.unclassified.claimed)}/{cov.unclassified.total}"
        print(f"{cov.claimed}/{cov.total} articles claimed by a playbook; {classes}")


@task(help={"dir": "playbooks folder (default: env RUNBOOKS_PLAYBOOKS, else the repo's playbooks/)",
            "corpus": "articles folder to check articleIds against (default: as for articles.list)"})
def playbooks_validate(c: Context, dir_: str = "", corpus: str = "") -> None:
    """Lint the playbooks (schema, steps and parameters, signal ids, articleIds); exit 1 on errors."""
    from runbooks.articles import default_corpus_dir
    from runbooks.errors import UsageError
    from runbooks.playbook import default_playbooks_dir, lint

    with user_errors():
        folder = dir_ or str(default_playbooks_dir())
        corpus_dir: str | None = corpus or None
        if corpus_dir is None:
            try:
                corpus_dir = str(default_corpus_dir())
            except UsageError:
                print("note: no articles folder; articleIds not checked against the corpus")
        issues = lint(folder, corpus_dir)
        for issue in issues:
            print(f"{issue.severity}: {issue}")
        errors = sum(1 for i in issues if i.severity == "error")
        if errors:
            raise Exit(f"{errors} error(s) in {folder}", code=1)
        print(f"{folder}: playbooks OK")




@task(help={"json": "print JSON",
            "dir": "playbooks folder (default: env RUNBOOKS_PLAYBOOKS, else the repo's playbooks/)"})
def playbooks_list(c: Context, json_: bool = False, dir_: str = "") -> None:
    """One line per playbook: its id, title, the articleIds it serves and its scenario ids."""
    from runbooks.playbook import load_playbooks

    with user_errors(json_):
        rows = [{"id": pb.id, "title": pb.title, "articles": list(pb.articles),
                 "scenarios": [sc.id for sc in pb.scenarios]} for pb in load_playbooks(dir_ or None).values()]
        if json_:
            print_json(rows)
            return
        for r in rows:
            print(f"{r['id']}: {r['title']}")
            print(f"    scenarios: {', '.join(r['scenarios'])}")
            print(f"    articles:  {', '.join(r['articles'])}")
        print(f"{len(rows)} playbook(s)")


articles = Collection("articles", list=articles_list, show=articles_show, coverage=articles_coverage)
playbooks = Collection("playbooks", validate=playbooks_validate, list=playbooks_list)
