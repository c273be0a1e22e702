"""Platform sources and publishers by name: the one place that knows every implementation."""

from __future__ import annotations

import time
from typing import Any

from deephype.common.platforms.base import Clock, PlatformOptions, Publisher
from deephype.common.platforms.bluesky import BlueskyPublisher, BlueskySession, BlueskySource
from deephype.common.platforms.mastodon import MastodonPublisher, MastodonSource, mastodon_client
from deephype.common.platforms.x import XPublisher, XSource, x_client


def build_platform_source(
    name: str, settings: Any, options: PlatformOptions | None = None, clock: Clock = time.time
) -> XSource | MastodonSource | BlueskySource:
    options = options or PlatformOptions.from_settings(settings)
    if name == "x":
        client = x_client(settings, options.timeout_seconds)
        return XSource(client, options.x_timelines, settings.bot_handles, options, clock)
    if name == "mastodon":
        api = mastodon_client(settings, options.timeout_seconds)
        return MastodonSource(
            api, options.mastodon_timelines, options.mastodon_hashtags, settings.bot_handles, options, clock
        )
    if name == "bluesky":
        session = BlueskySession.from_settings(settings, "listener", options.timeout_seconds)
        return BlueskySource(session, options.bluesky_timelines, settings.bot_handles, options, clock)
    raise ValueError(f"unknown platform source {name!r} (choose from x, mastodon, bluesky)")


def build_platform_publisher(
    name: str, settings: Any, options: PlatformOptions | None = None, clock: Clock = time.time
) -> Publisher:
    options = options or PlatformOptions.from_settings(settings)
    if name == "x":
        return XPublisher(x_client(settings, options.timeout_seconds), options, clock)
    if name == "mastodon":
        return MastodonPublisher(
            mastodon_client(settings, options.timeout_seconds),
            clock,
            getattr(settings, "mastodon_visibility", "unlisted"),
        )
    if name == "bluesky":
        return BlueskyPublisher(
            BlueskySession.from_settings(settings, "poster", options.timeout_seconds), options, clock
        )
    raise ValueError(f"unknown platform {name!r} (choose from x, mastodon, bluesky)")
