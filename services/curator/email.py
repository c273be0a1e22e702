"""Tell the curator there is something to review: one email per song, every candidate, one link.

Backends behind one interface: a local outbox folder (default, offline), SMTP, and SendGrid (no free plan,
so SMTP must work as well). Mail scanners open links, so the link only opens the review page; nothing is
ever approved by a GET.
"""

from __future__ import annotations

import logging
import smtplib
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from jinja2 import Environment, PackageLoader, select_autoescape

from deephype.common.settings import Settings
from deephype.curator.store import SongView

log = logging.getLogger("deephype.curator.email")

# Templates ship with the package: no need to stat their files on every email (auto_reload).
_templates = Environment(
    loader=PackageLoader("deephype.curator", "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
)


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, except that each header name's class is made once: the standard one
    makes a new class with type() every time a header is set or written, about a third of an email's CPU."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        made = self._made.get(name.lower())
        if made is None:
            made = self._made[name.lower()] = super().__getitem__(name)
        return made


# The default (RFC 5322) policy, headers and all, only cheaper to apply: the email comes out the same.
_POLICY = default_policy.clone(header_factory=_HeaderClasses())


class EmailError(Exception):
    """Sending failed; the bus retries the message."""


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> None: ...


def compose(song: SongView, review_url: str, settings: Settings) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = f"[deephype] {len(song.candidates)} candidates for {song.artist} - {song.title}"
    message["From"] = settings.curator_email_from
    message["To"] = settings.curator_email_to
    message["Date"] = formatdate(usegmt=True)
    # Unique per email; the domain is the sender's, so mail clients and spam filters see a well-formed id.
    message["Message-ID"] = make_msgid(domain=_domain(settings.curator_email_from))
    message["X-Deephype-Song"] = song.set_id
    context = {"song": song, "review_url": review_url}
    message.set_content(_templates.get_template("email.txt").render(context))
    message.add_alternative(_templates.get_template("email.html").render(context), subtype="html")
    return message


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip(" >") or "localhost"


class OutboxSender:
    """Writes each email as an .eml file: the offline default, and what the demo shows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage) -> None:
        name = f"{message['X-Deephype-Song']}.eml"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(bytes(message))
        temporary.replace(self.folder / name)


class SmtpSender:
    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise EmailError(f"SMTP {s.smtp_host}:{s.smtp_port} failed: {exc}") from exc


class SendGridSender:
    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        from sendgrid import SendGridAPIClient

        self.client = SendGridAPIClient(
            api_key=settings.sendgrid_api_key.get_secret_value(), host=settings.sendgrid_base_url
        )
        self.client.client.timeout = timeout  # the library would wait forever

    def send(self, message: EmailMessage) -> None:
        from python_http_client.exceptions import HTTPError
        from sendgrid.helpers.mail import Content, Mail

        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        mail = Mail(from_email=message["From"], to_emails=message["To"], subject=message["Subject"])
        if text is not None:
            mail.add_content(Content("text/plain", text.get_content()))
        if html is not None:
            mail.add_content(Content("text/html", html.get_content()))
        try:
            response = self.client.send(mail)
        except HTTPError as exc:
            raise EmailError(f"SendGrid answered {exc.status_code}: {exc.body!r}") from exc
        except OSError as exc:
            raise EmailError(f"SendGrid unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise EmailError(f"SendGrid answered {response.status_code}")


def build_sender(settings: Settings) -> EmailSender:
    backend = settings.curator_email_backend
    if backend == "outbox":
        return OutboxSender(settings.service_state_dir("curator") / "outbox")
    if backend == "smtp":
        return SmtpSender(settings)
    if backend == "sendgrid":
        return SendGridSender(settings)
    raise ValueError(f"unknown curator_email_backend {backend!r} (outbox, smtp or sendgrid)")
