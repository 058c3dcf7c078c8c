"""Research tools: FTS5 search over the bundled corpus, reports stored in the ledger."""

from __future__ import annotations

import pytest

from onward.examples.ledger import Ledger
from onward.examples.research import (
    TextIndex,
    bundled_data,
    fts_query,
    search_documents,
    store_report,
)
from onward.exceptions import ToolArgumentsError
from tests.unit.goals.conftest import ContextFactory


def test_corpus_has_enough_varied_documents() -> None:
    docs = bundled_data("corpus.json", "documents")
    assert len(docs) >= 50
    assert len({d["id"] for d in docs}) == len(docs)
    assert len({d["topic"] for d in docs}) >= 10
    assert all(40 <= len(d["body"].split()) <= 120 for d in docs)


def test_query_words_are_quoted_so_punctuation_is_never_syntax() -> None:
    assert fts_query('What is "saga" (NEAR) AND x*?') == '"saga" OR "near" OR "x"'
    assert fts_query("what is the") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("saga compensation", "doc-002"),
        ("how do honeybees communicate", "doc-035"),
        ("battery ageing heat", "doc-045"),
        ("why is my city hotter than the countryside", "doc-038"),
    ],
)
def test_search_ranks_the_relevant_document_first(query: str, expected: str) -> None:
    result = search_documents(query)
    assert result["sources"][0] == expected
    top = result["hits"][0]
    assert top["id"] == expected
    assert "**" in top["snippet"]
    assert top["text"]
    scores = [h["score"] for h in result["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_returns_hits_and_names_the_next_step() -> None:
    result = search_documents("saga idempotency", 2)
    assert result["sources"] == [h["id"] for h in result["hits"]] == ["doc-002", "doc-001"]
    # No draft written for any particular model: what comes next is typed metadata.
    assert not {"title", "body"} & set(result)
    assert search_documents.follow_ups == ("store_report",)


async def test_search_with_no_match_says_so() -> None:
    result = await search_documents.invoke({"query": "zeppelin quasar xylophone"})
    assert result["hits"] == []
    assert "No documents matched" in result["note"]
    limited = await search_documents.invoke({"query": "energy", "limit": 2})
    assert len(limited["hits"]) == 2


def test_text_index_is_reusable_for_other_collections() -> None:
    index = TextIndex(
        [
            {"id": "a", "title": "Cats", "body": "Cats purr.", "kind": "pets"},
            {"id": "b", "title": "Dogs", "body": "Dogs bark loudly.", "kind": "pets"},
        ],
        tag_field="kind",
    )
    [hit] = index.search("barking dog")
    assert (hit.id, hit.tag) == ("b", "pets")
    assert index.ids == {"a", "b"}


async def test_store_report_is_idempotent_and_collects_citations(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    args = {
        "title": "Sagas",
        "body": "Sagas undo steps [doc-002]; keys make retries safe [doc-001].",
        "sources": ["doc-002", "doc-006"],
    }
    first = await store_report.invoke(args, make_ctx("r1"))
    again = await store_report.invoke(args, make_ctx("r1", attempt=2))
    assert again == first
    assert first["sources"] == ["doc-002", "doc-006", "doc-001"]
    assert first["uncited_sources"] == ["doc-006"]
    [row] = ledger.rows("reports")
    assert row["id"] == first["report_id"]
    assert row["sources"] == ["doc-002", "doc-006", "doc-001"]


async def test_store_report_refuses_made_up_sources(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    with pytest.raises(ToolArgumentsError, match=r"unknown document ids \['doc-999'\]"):
        await store_report.invoke(
            {"title": "T", "body": "Claim [doc-999].", "sources": []}, make_ctx()
        )
    assert ledger.rows("reports") == []
