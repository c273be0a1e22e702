"""Review links: forged, expired and replayed tokens are refused; sessions cannot be forged either."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deephype.common.db import Database
from deephype.common.settings import Settings
from deephype.curator.auth import Auth, TokenError
from deephype.curator.store import SCHEMA, SessionRegistry
from tests.conftest import make_settings


def auth_for(settings: Settings) -> Auth:
    return Auth(settings, SessionRegistry(Database(settings.state_dir / "curator.sqlite3", SCHEMA)))


def test_a_valid_link_names_its_song(tmp_path: Path) -> None:
    auth = auth_for(make_settings(tmp_path, curator_secret_key="k" * 32))
    set_id, token_id = auth.read_review_token(auth.review_token("song-1"))
    assert set_id == "song-1" and token_id


def test_expired_links_are_refused(tmp_path: Path) -> None:
    auth = auth_for(make_settings(tmp_path, curator_secret_key="k" * 32, curator_token_max_age_seconds=1))
    token = auth.review_token("song-1")
    time.sleep(2.1)  # itsdangerous timestamps have one-second resolution
    with pytest.raises(TokenError, match="expired"):
        auth.read_review_token(token)


def test_forged_links_and_sessions_are_refused(tmp_path: Path) -> None:
    ours = auth_for(make_settings(tmp_path, curator_secret_key="k" * 32))
    theirs = auth_for(make_settings(tmp_path, curator_secret_key="x" * 32))
    with pytest.raises(TokenError, match="not valid"):
        ours.read_review_token(theirs.review_token("song-1"))
    token = ours.review_token("song-1")
    with pytest.raises(TokenError, match="not valid"):
        ours.read_review_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    forged_session = theirs.dump_session(theirs.new_session(user="curator"))
    assert ours.load_session(forged_session) is None
    assert ours.load_session(ours.dump_session(ours.new_session(user="curator"))).user == "curator"


def test_password_login_is_off_without_a_password(tmp_path: Path) -> None:
    auth = auth_for(make_settings(tmp_path))
    assert not auth.login_enabled and not auth.check_password("")
