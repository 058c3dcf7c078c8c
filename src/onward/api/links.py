"""Links a conversation's responses carry: its API resources and its workflow page."""

from __future__ import annotations

from urllib.parse import quote

from onward.api.schemas import ConversationLinks
from onward.config import Settings
from onward.redaction import public_url


def workflow_url(settings: Settings, conversation_id: str) -> str:
    """The conversation's workflow page in the Temporal Web UI."""
    namespace = quote(settings.temporal_namespace, safe="")
    # Links go to every user: never with the credentials a configured URL may carry.
    base = public_url(settings.web_ui_url)
    return f"{base}/namespaces/{namespace}/workflows/{quote(conversation_id)}"


def links(settings: Settings, conversation_id: str) -> ConversationLinks:
    own = f"/v1/conversations/{quote(conversation_id)}"
    return ConversationLinks(
        self=own, events=f"{own}/events", workflow=workflow_url(settings, conversation_id)
    )
