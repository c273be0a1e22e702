"""The curator's bus handlers: store candidates and email the curator; record what got published."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from deephype.common.bus import Handler
from deephype.common.contracts import Candidates, Envelope, PostStatus, PublishedPost
from deephype.common.settings import Settings
from deephype.curator.auth import Auth
from deephype.curator.email import EmailSender, compose
from deephype.curator.store import CuratorStore

log = logging.getLogger("deephype.curator")


def review_link(public_url: str, auth: Auth, set_id: str) -> str:
    return f"{public_url.rstrip('/')}/review/{auth.review_token(set_id)}"


def make_candidates_handler(
    store: CuratorStore,
    sender: EmailSender,
    auth: Auth,
    settings: Settings,
    *,
    post_platform: str | Sequence[str],
) -> Handler:
    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, Candidates)
        store.add_candidates(message)
        # Checked separately from the insert: a crash between storing and mailing mails on redelivery.
        if store.needs_email(message.message_id):
            song = store.song(message.message_id)
            sender.send(compose(song, review_link(settings.public_url, auth, song.set_id), settings))
            store.mark_emailed(message.message_id)
            log.info("emailed the curator about %s - %s (%s)", song.artist, song.title, song.set_id)
        if settings.curator_auto_approve and store.status(message.message_id) == "pending":
            top = message.candidates[0]
            approval = store.approve(
                message.message_id, top.candidate_id, None, by="auto-approve", post_platform=post_platform
            )
            return [approval]
        return []

    return handle


def make_published_handler(store: CuratorStore) -> Handler:
    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, PublishedPost)
        store.mark_published(message)
        return []

    return handle


def make_post_status_handler(store: CuratorStore) -> Handler:
    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, PostStatus)
        if store.record_post_status(message):
            log.info("the poster says %s on %s: %s", message.approval_id, message.platform.value, message.state)
        return []

    return handle
