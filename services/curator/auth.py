"""Who may decide: the curator (password login, or the API's own bearer token) or the holder of a signed,
expiring, single-use review link bound to one song. Sessions are signed cookies carrying a CSRF token
that every form must echo back; a signed-in session (curator or review link) also has a row on the server,
so logging out ends it for good and a new password ends every session begun under the old one."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from deephype.common.settings import Settings
from deephype.common.state_secrets import new_secret, stored_secret
from deephype.curator.store import SessionRegistry

log = logging.getLogger("deephype.curator.auth")

SESSION_COOKIE = "deephype_session"
SESSION_MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class Session:
    csrf: str
    user: str | None = None  # "curator" once logged in
    song: str | None = None  # set when the session came from a review link: that song only
    token_id: str | None = None
    session_id: str | None = None  # signed-in sessions only: its row in the SessionRegistry

    def may_see(self, set_id: str) -> bool:
        return self.user == "curator" or self.song == set_id

    @property
    def logged_in(self) -> bool:
        return self.user is not None or self.song is not None


def secret_key_path(settings: Settings) -> Path:
    """Where the signing key lives when DEEPHYPE_CURATOR_SECRET_KEY is not set: made once, kept across
    restarts, so emailed links and sessions survive them (`deephype curator rotate-key` replaces it)."""
    return settings.service_state_dir("curator") / "secret_key"


class TokenError(Exception):
    """A review link that is forged, expired or already used."""


class Auth:
    def __init__(self, settings: Settings, sessions: SessionRegistry) -> None:
        secret = settings.curator_secret_key.get_secret_value() or (
            # Copies on several hosts share the database, not a folder: the key made once is kept there.
            sessions.shared_key("curator_secret_key", new_secret)
            if sessions.db.dialect == "postgres"
            else stored_secret(secret_key_path(settings))
        )
        self._serializer = URLSafeTimedSerializer(secret, salt="deephype-curator")
        self._password = settings.curator_password.get_secret_value()
        self._api_token = settings.curator_api_token.get_secret_value()
        self._metrics_token = settings.curator_metrics_token.get_secret_value()
        # Names the password without revealing it; sessions begun under another password are not accepted.
        self._password_fingerprint = hmac.new(
            secret.encode(), b"curator password\n" + self._password.encode(), hashlib.sha256
        ).hexdigest()
        self._sessions = sessions
        self.token_max_age = settings.curator_token_max_age_seconds

    @property
    def login_enabled(self) -> bool:
        return bool(self._password)

    def check_password(self, password: str) -> bool:
        return self.login_enabled and secrets.compare_digest(password.encode(), self._password.encode())

    def check_api_token(self, token: str) -> bool:
        """The JSON API has a token of its own: the login password does not open it."""
        return bool(self._api_token) and secrets.compare_digest(token.encode(), self._api_token.encode())

    def check_metrics_token(self, token: str) -> bool:
        """A token that opens only /metrics, for a scraper that should not hold the API token."""
        return bool(self._metrics_token) and secrets.compare_digest(token.encode(), self._metrics_token.encode())

    # --- sessions (cookies) ---

    def new_session(self, **fields: str | None) -> Session:
        """A fresh session; one that signs someone in (user or song) is recorded on the server."""
        session = Session(csrf=secrets.token_urlsafe(24), **fields)  # type: ignore[arg-type]
        if session.logged_in:
            session = Session(**{**session.__dict__, "session_id": secrets.token_urlsafe(24)})
            self._sessions.begin(session.session_id, self._password_fingerprint, SESSION_MAX_AGE)  # type: ignore[arg-type]
        return session

    def end_session(self, session: Session) -> None:
        """Log out: the cookie stops working everywhere, even a copy saved before."""
        if session.session_id:
            self._sessions.end(session.session_id)

    def dump_session(self, session: Session) -> str:
        return self._serializer.dumps(session.__dict__, salt="session")

    def load_session(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, salt="session", max_age=SESSION_MAX_AGE)
            session = Session(**data)
        except (BadSignature, TypeError):
            return None
        if session.logged_in and not (
            session.session_id and self._sessions.alive(session.session_id, self._password_fingerprint)
        ):
            return None  # logged out, begun under another password, or expired on the server
        return session

    # --- review links ---

    def review_token(self, set_id: str) -> str:
        return self._serializer.dumps({"song": set_id, "id": secrets.token_urlsafe(12)}, salt="review-link")

    def read_review_token(self, token: str) -> tuple[str, str]:
        """(set_id, token_id) of a valid link; TokenError says why not."""
        try:
            data = self._serializer.loads(token, salt="review-link", max_age=self.token_max_age)
        except SignatureExpired as exc:
            raise TokenError("this review link has expired") from exc
        except BadSignature as exc:
            raise TokenError("this review link is not valid") from exc
        if not isinstance(data, dict) or not isinstance(data.get("song"), str) or not isinstance(data.get("id"), str):
            raise TokenError("this review link is not valid")
        return data["song"], data["id"]
