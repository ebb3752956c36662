"""The schema corpus itself: every file loads into an empty PostgreSQL 18 database, every pair differs."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from material.corpus import CORPUS_DIR, SPANS, catalog_counts, load, pairs, projects

ALL_FILES = [path for versions in projects().values() for path in versions]
# Lines that name the server or pg_dump version, and the corpus file's own header.
_UNSTABLE = re.compile(r"^-- (Dumped from|Dumped by) ")


def _schema_text(sql: str) -> str:
    lines = sql.splitlines()
    while lines and lines[0].startswith("-- ") and not lines[0].startswith("-- PostgreSQL"):
        lines.pop(0)  # the corpus header above pg_dump's own
    return "\n".join(line for line in lines if not _UNSTABLE.match(line)).strip()


def _load_and_dump(server: LocalPostgres, path: Path) -> tuple[str, dict[str, int]]:
    name = f"corpus_{re.sub(r'[^a-z0-9]', '_', f'{path.parent.name}_{path.stem}'.lower())}"
    server.create_database(name, drop_existing=True)
    try:
        conn = psycopg2.connect(server.uri(name))
        try:
            with conn, conn.cursor() as cursor:
                load(cursor, path)
                cursor.execute("SHOW search_path")
                assert cursor.fetchone()[0] == '"$user", public', "load() must restore the session"
                counts = catalog_counts(cursor)
        finally:
            conn.close()
        dump = subprocess.run(
            [str(PG_BIN_DIR / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", "-d", name],
            env=server.env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    finally:
        server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
    kept = "".join(line for line in dump.splitlines(keepends=True) if not line.startswith("\\"))
    return _schema_text(kept), counts


@pytest.fixture(scope="module")
def loaded(postgres: LocalPostgres) -> Iterator[Callable[[Path], tuple[str, dict[str, int]]]]:
    """Load a corpus file into its own empty database (once per file): its dump and catalog counts."""
    cache: dict[Path, tuple[str, dict[str, int]]] = {}

    def get(path: Path) -> tuple[str, dict[str, int]]:
        if path not in cache:
            cache[path] = _load_and_dump(postgres, path)
        return cache[path]

    yield get


def test_corpus_has_the_projects_of_issue_10_each_at_two_versions_or_more() -> None:
    found = projects()
    assert {"optuna", "wagtail", "prefect", "pagila", "synthetic", "airflow"} <= set(found)
    for project, versions in found.items():
        assert len(versions) >= 2, f"{project} has {len(versions)} version(s)"
    assert (CORPUS_DIR / "README.md").is_file()


def test_versions_are_in_order() -> None:
    found = projects()
    assert [p.stem for p in found["optuna"]] == ["2.10.1", "3.1.1", "5.0.0"]
    assert [p.stem for p in found["pagila"]] == ["4.0.0", "4.1.0", "4.1.0-drift"]
    assert [p.stem for p in found["airflow"]][-2:] == ["3.3.0", "3.3.2"]


def test_pairs_cover_both_directions_and_empty_to_full() -> None:
    found = {pair.name: pair for pair in pairs()}
    for project, versions in projects().items():
        for old, new in itertools.pairwise(versions):
            forward = found[f"{project}:{old.stem}->{new.stem}"]
            assert (forward.source, forward.target) == (new, old)
            backward = found[f"{project}:{new.stem}->{old.stem}"]
            assert (backward.source, backward.target) == (old, new)
        for version in versions:
            assert found[f"{project}:empty->{version.stem}"].target is None
    for project, old, new in SPANS:  # wider jumps, both ways
        assert found[f"{project}:{old}->{new}"].source.stem == new
        assert found[f"{project}:{new}->{old}"].source.stem == old
    assert len(found) == sum(3 * len(v) - 2 for v in projects().values()) + 2 * len(SPANS)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_file_loads_into_an_empty_database_and_dumps_back_to_itself(
    path: Path, loaded: Callable[[Path], tuple[str, dict[str, int]]]
) -> None:
    text = path.read_text()
    assert not any(line.startswith("\\") for line in text.splitlines()), "psql meta-command left"
    dump, counts = loaded(path)
    assert counts["tables"] > 0, counts
    assert dump == _schema_text(text)


@pytest.mark.parametrize("pair", pairs(), ids=lambda p: p.name)
def test_the_two_sides_of_every_pair_differ(
    pair, loaded: Callable[[Path], tuple[str, dict[str, int]]]
) -> None:
    source = loaded(pair.source)[0] if pair.source else ""
    target = loaded(pair.target)[0] if pair.target else ""
    assert source != target
