"""Curator email: a real SMTP server on loopback (aiosmtpd) and the local outbox."""

from __future__ import annotations

import email
import email.utils
import re
import socket
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from deephype.common.db import Database
from deephype.common.signing import ApprovalKeys
from deephype.curator.auth import Auth
from deephype.curator.email import EmailError, OutboxSender, SendGridSender, SmtpSender, compose
from deephype.curator.handlers import make_candidates_handler
from deephype.curator.store import SCHEMA, CuratorStore, SessionRegistry
from tests.conftest import TEST_APPROVAL_KEY, make_settings
from tests.factories import candidates
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.server import Fault


class Inbox(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Message] = []

    def handle_message(self, message: Message) -> None:
        self.messages.append(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> tuple[Inbox, int]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_one_email_per_song_over_smtp_with_every_candidate_and_a_link(tmp_path: Path, smtp_server) -> None:
    inbox, port = smtp_server
    settings = make_settings(
        tmp_path,
        curator_email_backend="smtp",
        smtp_port=port,
        public_url="http://review.example:8004",
        curator_secret_key="k" * 32,
    )
    store = CuratorStore(Database(tmp_path / "c.sqlite3", SCHEMA), ApprovalKeys([TEST_APPROVAL_KEY]))
    auth = Auth(settings, SessionRegistry(store.db))
    handle = make_candidates_handler(store, SmtpSender(settings, timeout=5), auth, settings, post_platform="x")
    message = candidates(texts=("A <b>bold</b> first take.", "Second take."), url="https://social.example/@ana/1")
    assert handle(message) == []
    assert handle(message) == []  # redelivered: no second email
    [mail] = inbox.messages
    assert mail["Subject"] == "[deephype] 2 candidates for Low Tide - Glass Harbour"
    parsed = email.message_from_string(mail.as_string())
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "A <b>bold</b> first take." in text and "Second take." in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html  # escaped in HTML
    link = next(line for line in text.splitlines() if line.startswith("http://review.example:8004/review/"))
    assert auth.read_review_token(link.rsplit("/", 1)[1])[0] == message.message_id
    # Issue 15: the original post is linked, and the mail carries the headers every client expects.
    assert "https://social.example/@ana/1" in text and 'href="https://social.example/@ana/1"' in html
    assert email.utils.parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert re.fullmatch(r"<[^@<>\s]+@localhost>", mail["Message-ID"])


def test_smtp_failure_is_an_email_error_so_the_bus_retries(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_email_backend="smtp", smtp_port=free_port())
    store = CuratorStore(Database(tmp_path / "c.sqlite3", SCHEMA), ApprovalKeys([TEST_APPROVAL_KEY]))
    store.add_candidates(candidates())
    song = store.songs()[0]
    with pytest.raises(EmailError, match=r"SMTP 127\.0\.0\.1"):
        SmtpSender(settings, timeout=2).send(compose(song, "http://x/review/t", settings))
    assert store.needs_email(song.set_id)  # still owed: the retry will send it


def test_outbox_writes_one_eml_per_song(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = CuratorStore(Database(tmp_path / "c.sqlite3", SCHEMA), ApprovalKeys([TEST_APPROVAL_KEY]))
    outbox = OutboxSender(tmp_path / "outbox")
    handle = make_candidates_handler(
        store, outbox, Auth(settings, SessionRegistry(store.db)), settings, post_platform="x"
    )
    handle(candidates("1"))
    handle(candidates("2"))
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    assert "Glass Harbour" in email.message_from_bytes(files[0].read_bytes())["Subject"]


def sendgrid_settings(tmp_path: Path, url: str, key: str = "SG.fake-key-for-tests"):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, curator_email_backend="sendgrid", sendgrid_base_url=url, sendgrid_api_key=key)


def one_song(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = CuratorStore(Database(tmp_path / "c.sqlite3", SCHEMA), ApprovalKeys([TEST_APPROVAL_KEY]))
    store.add_candidates(candidates(texts=("First take.", "Second take.")))
    return store.songs()[0]


def test_sendgrid_sends_text_and_html_in_its_wire_format(tmp_path: Path) -> None:
    with FakeSendGrid() as fake:
        settings = sendgrid_settings(tmp_path, fake.url)
        SendGridSender(settings, timeout=5).send(compose(one_song(tmp_path), "http://r/review/t", settings))
    [mail] = fake.sent
    assert mail["personalizations"][0]["to"][0]["email"] == settings.curator_email_to
    assert mail["subject"] == "[deephype] 2 candidates for Low Tide - Glass Harbour"
    kinds = {part["type"]: part["value"] for part in mail["content"]}
    assert "First take." in kinds["text/plain"] and "http://r/review/t" in kinds["text/html"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.status(500, b'{"errors": [{"message": "internal"}]}'), "SendGrid answered 500"),
        (Fault.status(429, b'{"errors": []}', {"X-RateLimit-Reset": "1700000000"}), "SendGrid answered 429"),
        (Fault.malformed(b"<html>proxy error</html>"), None),
        (Fault.hanging(), "unreachable"),
    ],
)
def test_sendgrid_failures_become_email_errors(tmp_path: Path, fault: Fault, expected: str | None) -> None:
    with FakeSendGrid() as fake:
        fake.server.fail("/v3/mail/send", fault)
        settings = sendgrid_settings(tmp_path, fake.url)
        sender = SendGridSender(settings, timeout=1)
        message = compose(one_song(tmp_path), "http://r/review/t", settings)
        if expected is None:  # a 200 with a body that is not SendGrid's: accepted is all 2xx means
            sender.send(message)
        else:
            with pytest.raises(EmailError, match=expected):
                sender.send(message)


def test_sendgrid_wrong_key_is_an_email_error(tmp_path: Path) -> None:
    with FakeSendGrid() as fake:
        settings = sendgrid_settings(tmp_path, fake.url, key="SG.wrong")
        with pytest.raises(EmailError, match="401"):
            SendGridSender(settings, timeout=5).send(compose(one_song(tmp_path), "http://r/review/t", settings))
        assert fake.sent == []
