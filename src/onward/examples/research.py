"""Research goal: plan, search a document collection, write a cited report, store it.

The collection is bundled (`data/corpus.json`) and indexed with SQLite FTS5 in memory
the first time a search runs; BM25 ranks the hits. `TextIndex` is reused by the
support goal for its knowledge base.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from pydantic import Field

from onward.agent.specs import ExampleTurn
from onward.config import get_settings
from onward.examples.ledger import ledger_for
from onward.exceptions import ToolArgumentsError
from onward.goals.base import Goal
from onward.tools import ToolContext, tool

# Words that match nearly every document and only blur the ranking.
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "me", "my", "of", "on", "or", "our", "that", "the", "their",
    "there", "this", "to", "was", "what", "when", "where", "which", "who", "why", "will",
    "with", "you", "your",
})
# fmt: on
# fmt: off
# Words that say nothing about what is asked, left out when measuring how much of a
# question a document covers (they still rank); so are addresses and ids.
_FILLER = frozenset({
    "am", "could", "get", "got", "hello", "help", "hi", "im", "just", "like", "need",
    "please", "thanks", "want", "would",
})
# fmt: on
_EMAIL_OR_ID = re.compile(r"\S+@\S+|\b\w*\d\w*\b")
_CITATION = re.compile(r"\[(doc-\d+)\]")


@dataclass(frozen=True)
class Hit:
    """One ranked search result."""

    id: str
    title: str
    tag: str
    """The document's topic or category."""
    body: str
    snippet: str
    """The best-matching fragment, matched terms in `**bold**`."""
    score: float
    """BM25 relevance; higher is better."""
    coverage: float = 1.0
    """The share of the query's meaningful words the document contains (stemmed): a
    hit on one word of a long question is a weak one, however high its score."""


def _words(text: str, ignored: frozenset[str] = frozenset()) -> list[str]:
    """The meaningful words of `text`, each once, in order."""
    found = [
        w for w in re.findall(r"\w+", text.casefold()) if w not in _STOPWORDS and w not in ignored
    ]
    return list(dict.fromkeys(found))


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any meaningful word of `text`, or None if it has none.

    Words are quoted, so user punctuation can never be read as FTS5 syntax.
    """
    words = _words(text)
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in words)


class TextIndex:
    """An in-memory SQLite FTS5 index over short documents, ranked by BM25.

    Args:
        documents: Mappings with `id`, `title`, `body` and the `tag_field` key.
        tag_field: Which key holds the document's topic or category.
    """

    def __init__(self, documents: Iterable[Mapping[str, Any]], tag_field: str = "topic") -> None:
        # One connection shared by worker threads: the lock serialises its use.
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(
            "CREATE VIRTUAL TABLE docs USING fts5("
            "id UNINDEXED, title, body, tag UNINDEXED, tokenize='porter unicode61')"
        )
        rows = [(d["id"], d["title"], d["body"], d[tag_field]) for d in documents]
        self._conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", rows)
        self._conn.commit()
        self.ids = frozenset(r[0] for r in rows)

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """The best `limit` documents for `query`, best first."""
        match = fts_query(query)
        if match is None:
            return []
        with self._lock:
            found = self._conn.execute(
                # bm25() is lower for better matches; titles weigh double.
                "SELECT id, title, tag, body, snippet(docs, 2, '**', '**', '…', 16), "
                "bm25(docs, 0.0, 2.0, 1.0, 0.0) AS rank "
                "FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            ).fetchall()
            words = _words(_EMAIL_OR_ID.sub(" ", query), _FILLER) or _words(query)
            holding = {w: self._holding(w) for w in words}
        return [
            Hit(
                id=i,
                title=t,
                tag=g,
                body=b,
                snippet=s,
                score=round(-r, 3),
                coverage=round(sum(i in ids for ids in holding.values()) / len(words), 3),
            )
            for i, t, g, b, s, r in found
        ]

    def _holding(self, word: str) -> frozenset[str]:
        """The ids of the documents that contain `word` (as the index stems it)."""
        rows = self._conn.execute("SELECT id FROM docs WHERE docs MATCH ?", (f'"{word}"',))
        return frozenset(r[0] for r in rows)


def bundled_data(name: str, key: str) -> list[dict[str, Any]]:
    """The `key` list of the bundled JSON file `onward/examples/data/<name>`."""
    text = files("onward.examples").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return json.loads(text)[key]


@cache
def corpus_index() -> TextIndex:
    """The research corpus index (built once per process)."""
    return TextIndex(bundled_data("corpus.json", "documents"), tag_field="topic")


@tool(local=True, timeout_s=10, follow_ups=["store_report"])
def search_documents(
    query: Annotated[str, Field(min_length=1, description="Keywords or a question.")],
    limit: Annotated[int, Field(ge=1, le=10, description="How many hits to return.")] = 5,
) -> dict[str, Any]:
    """Search the document collection; returns ranked hits (id, title, snippet, text).

    Cite a hit in your report as [doc-id], e.g. [doc-004]. `sources` lists the hit ids
    in rank order.
    """
    hits = corpus_index().search(query, limit)
    result: dict[str, Any] = {
        "query": query,
        "hits": [
            {
                "id": h.id,
                "title": h.title,
                "topic": h.tag,
                "snippet": h.snippet,
                "text": h.body,
                "score": h.score,
            }
            for h in hits
        ],
        "sources": [h.id for h in hits],
    }
    if not hits:
        result["note"] = "No documents matched; try other or fewer keywords."
    return result


@tool(timeout_s=15)
def store_report(
    title: Annotated[str, Field(min_length=1, max_length=200)],
    body: Annotated[str, Field(min_length=1, description="The report, citing [doc-id]s.")],
    sources: Annotated[list[str], Field(description="Ids of the documents the report cites.")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Store the finished research report with the ids of the documents it cites.

    Every source must be a document id returned by `search_documents`.
    """
    known = corpus_index().ids
    cited = list(dict.fromkeys(_CITATION.findall(body)))
    listed = list(dict.fromkeys([*sources, *cited]))
    unknown = [s for s in listed if s not in known]
    if unknown:
        # Grounding check: a citation the search never returned was made up.
        raise ToolArgumentsError(f"unknown document ids {unknown}; cite only search results")
    report = ledger_for(get_settings()).record_report(
        ctx.idempotency_key,
        title=title,
        body=body,
        sources=listed,
        conversation_id=ctx.conversation_id,
    )
    return {
        "report_id": report.id,
        "title": report.title,
        "sources": report.sources,
        "uncited_sources": [s for s in report.sources if s not in cited],
        "stored_at": report.created_at,
    }


RESEARCH = Goal(
    name="research",
    description="Research a question in the document collection and store a cited report.",
    instructions=(
        "You are a careful research assistant working from a fixed document collection.\n"
        "1. Plan: split the question into two or three focused sub-questions.\n"
        "2. Search: call `search_documents` once per sub-question with a few keywords.\n"
        "3. Synthesize: write a short report (a summary paragraph, then findings) that "
        "uses only facts from the hits and cites each one inline as [doc-id], "
        "e.g. [doc-004]. Say plainly when the collection does not cover something.\n"
        "4. Store: call `store_report` with a title, the report body and the ids you "
        "cited as `sources`.\n"
        "5. Finish with the report's id and its summary."
    ),
    tools=[search_documents, store_report],
    starter_prompt="What should I research? I'll search the library and write a cited report.",
    examples=[
        ExampleTurn(
            user="How do sagas keep distributed transactions consistent?",
            assistant="(calls search_documents with query='saga compensation' and then "
            "query='idempotency retries', writes a report citing [doc-002] and [doc-001], "
            "then calls store_report)",
        ),
    ],
)
