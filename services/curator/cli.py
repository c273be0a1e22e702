"""`deephype curator rotate-key`: a new key for review links and sessions (the old ones stop working)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    curator = subparsers.add_parser("curator", help="curator housekeeping (the review page's signing key)")
    actions = curator.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = actions.add_parser(
        "rotate-key",
        help="replace the key in the state dir that signs review links and sessions; restart the curator after",
        description="Every emailed review link and every session signed with the old key stops working.",
    )
    rotate.set_defaults(func=_rotate_key)


def _rotate_key(args: argparse.Namespace) -> int:
    from deephype.common.settings import get_settings
    from deephype.common.state_secrets import new_secret, replace_secret
    from deephype.curator.auth import secret_key_path

    settings = get_settings()
    if settings.curator_secret_key.get_secret_value():
        raise ValueError(
            "the key comes from DEEPHYPE_CURATOR_SECRET_KEY: put a new value there (`deephype keys new` prints "
            "one) and restart the curator"
        )
    if settings.database_url_for("curator"):
        from deephype.common.store import open_database
        from deephype.curator.store import MIGRATIONS, SessionRegistry

        db = open_database(settings, "curator", MIGRATIONS)
        SessionRegistry(db).shared_key("curator_secret_key", new_secret, replace=True)
        db.close()
        print("new curator key in the database; restart every curator copy. Earlier links and sessions no longer work.")
        return 0
    path = secret_key_path(settings)
    replace_secret(path, new_secret())
    print(f"new curator key in {path}; restart the curator. Earlier review links and sessions no longer work.")
    return 0
