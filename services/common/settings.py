"""All settings, read from DEEPHYPE_* environment variables (and .env), documented in .env.example.

Secrets are SecretStr so they never print; each may also come from a file (DEEPHYPE_<NAME>_FILE or a
secrets directory, for Docker/Kubernetes secrets).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEEPHYPE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir=os.environ.get("DEEPHYPE_SECRETS_DIR") or None,
    )

    # --- bus ---
    # Empty means the in-memory bus (one-process demo, unit tests). Several URLs, comma-separated, name the
    # nodes of a RabbitMQ cluster: connections go round them and fail over to the next on loss.
    amqp_url: str = ""
    exchange: str = "deephype"
    prefetch: int = Field(default=16, ge=1, le=10_000)
    handler_threads: int = Field(default=4, ge=1, le=256)
    max_attempts: int = Field(default=5, ge=1, le=100)
    # Retry delays in seconds, one TTL queue each; a retry waits in the smallest tier ≥ the asked delay.
    retry_delays: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 300.0, 3600.0])
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    quorum_queues: bool = True
    heartbeat_seconds: int = Field(default=30, ge=0)
    # How long a publish keeps retrying (reconnecting) before it gives up and the input is redelivered.
    publish_timeout_seconds: float = Field(default=30.0, gt=0)
    publish_window: int = Field(default=1000, ge=1, le=100_000)  # messages published, not yet confirmed
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # A message returned to its queue this often without an ack (its consumer keeps dying) is dead-lettered.
    max_redeliveries: int = Field(default=10, ge=1)

    # --- where state lives ---
    state_dir: Path = Path("var")
    # PostgreSQL for every service's state (postgresql://user:password@host/db), for copies on several hosts;
    # empty: SQLite files under state_dir. DEEPHYPE_<SERVICE>_DATABASE_URL sets one service's own.
    database_url: SecretStr = SecretStr("")
    listener_database_url: SecretStr = SecretStr("")
    enricher_database_url: SecretStr = SecretStr("")
    curator_database_url: SecretStr = SecretStr("")
    poster_database_url: SecretStr = SecretStr("")
    database_pool_size: int = Field(default=8, ge=1, le=1000)
    database_connect_timeout_seconds: float = Field(default=30.0, gt=0)
    models_dir: Path = DATA_DIR / "models"

    # --- HTTP ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Public base URL of the curator's review page, used in emails.
    public_url: str = "http://127.0.0.1:8004"

    # --- logging (deephype serve) ---
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- listener ---
    listener_sources: list[str] = Field(default_factory=lambda: ["feed"])
    listener_feed_path: Path = DATA_DIR / "sample_mentions.jsonl"
    listener_poll_seconds: float = Field(default=60.0, gt=0)
    bot_handles: list[str] = Field(default_factory=lambda: ["deephype"])
    # What confirms a detected song: none | offline | spotify | musicbrainz (a network provider is asked after
    # the offline catalog, through the cache; when it fails, detection falls back to its plausibility score).
    listener_lookup: str = "offline"
    listener_lookup_timeout_seconds: float = Field(default=3.0, gt=0)
    # POST /v1/mentions takes a bearer token or a Standard Webhooks signature; with neither it is closed.
    listener_api_token: SecretStr = SecretStr("")
    listener_webhook_secret: SecretStr = SecretStr("")
    listener_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=86_400)

    # --- enricher ---
    enricher_provider: str = "offline"  # offline | spotify | musicbrainz
    enricher_catalog_path: Path = DATA_DIR / "catalog.json"
    enricher_cache_ttl_seconds: int = 7 * 24 * 3600

    # --- generator ---
    generator_model: str = "default"  # folder name under models_dir, or a path; "null": benchmarks only
    generator_device: str = "auto"  # auto | cpu | cuda
    generator_torch_threads: int = Field(default=0, ge=0, le=256)  # 0: cores / handler_threads
    generator_candidates: int = Field(default=5, ge=1, le=64)
    generator_samples: int = Field(default=32, ge=1, le=1024)
    generator_temperature: float = Field(default=0.9, gt=0, le=5)
    generator_use_lcgan: bool = True
    generator_rank: bool = True  # rank by independent fluency + genre fit (ranking.py); off: own likelihood
    generator_fluency_model: str = "lstm"  # folder under models_dir: the LSTM VAE that scores a pretrained decoder
    # Songs decoded together in one batch (generator/batching.py); 1: each song alone on its handler thread.
    generator_batch_size: int = Field(default=8, ge=1, le=256)
    # How long the first waiting song waits for others to join its batch.
    generator_batch_wait_ms: float = Field(default=5.0, ge=0, le=10_000)
    # Threads that decode micro-batches side by side; the CPU's cores are shared among them (torch threads).
    generator_decode_threads: int = Field(default=1, ge=1, le=64)

    # --- curator ---
    curator_password: SecretStr = SecretStr("")
    curator_api_token: SecretStr = SecretStr("")  # the JSON API's bearer token (empty: the API is closed)
    curator_metrics_token: SecretStr = SecretStr("")  # opens only /metrics (the API token opens it too)
    # Failed logins / bearer tokens allowed per client and over all clients in the window, then 429.
    curator_auth_max_failures_per_client: int = Field(default=10, ge=1)
    curator_auth_max_failures_total: int = Field(default=100, ge=1)
    curator_auth_failure_window_seconds: int = Field(default=300, ge=1)
    curator_secret_key: SecretStr = SecretStr("")
    curator_email_backend: str = "outbox"  # outbox | smtp | sendgrid
    curator_email_to: str = "curator@localhost"
    curator_email_from: str = "deephype@localhost"
    curator_token_max_age_seconds: int = 3 * 24 * 3600
    curator_auto_approve: bool = False
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    sendgrid_api_key: SecretStr = SecretStr("")
    sendgrid_base_url: str = "https://api.sendgrid.com"

    # --- approvals: the curator signs them, the poster checks (comma-separated; the first signs) ---
    approval_keys: SecretStr = SecretStr("")

    # --- poster ---
    poster_platform: str = "dry_run"  # dry_run | x | mastodon | bluesky
    # Cross-posting: every platform an approval goes to, each exactly once (empty: just poster_platform).
    poster_platforms: list[str] = Field(default_factory=list)
    # The post around the approved commentary: {text}, {artist}, {title}, {link} (Spotify/MusicBrainz/post URL).
    post_template: str = '{text}\n\n{artist} - "{title}" {link}'
    # A template per platform (JSON object, e.g. {"x": "{text} {link}"}); a platform not named uses post_template.
    post_templates: dict[str, str] = Field(default_factory=dict)
    # Pacing, per platform: at most this many posts per rolling hour and day, at least the gap between two
    # (plus a random 0..jitter), none in the quiet hours ("HH:MM-HH:MM" in poster_timezone; empty: none).
    poster_max_per_hour: int = Field(default=4, ge=1)
    poster_max_per_day: int = Field(default=24, ge=1)
    poster_min_gap_seconds: float = Field(default=600.0, ge=0)
    poster_gap_jitter_seconds: float = Field(default=300.0, ge=0)
    poster_quiet_hours: str = Field(default="", pattern=r"^$|^\d{2}:\d{2}-\d{2}:\d{2}$")
    poster_timezone: str = "UTC"
    # A reply to a post that asked the bot goes out at once instead of waiting its turn.
    poster_replies_skip_queue: bool = True
    # Mastodon visibility of the bot's posts: public | unlisted | private | direct (bots post unlisted).
    mastodon_visibility: Literal["public", "unlisted", "private", "direct"] = "unlisted"
    # Engagement: the poster reads each post's likes, reposts and replies this many hours after it went out.
    engagement_read: bool = True
    engagement_checkpoints_hours: list[float] = Field(default_factory=lambda: [1.0, 24.0, 168.0])
    # X bills every read: off unless you turn it on.
    engagement_read_x: bool = False
    engagement_poll_seconds: float = Field(default=60.0, gt=0)
    engagement_max_reads_per_round: int = Field(default=20, ge=1, le=1000)

    # --- learning from the curator (deephype learn; services/generator/learn.py) ---
    # Where learned model versions live; empty: <state_dir>/generator/versions/<generator_model>.
    learn_versions_dir: str = ""
    # The curator's API, read by `deephype learn` and the generator's own learning (GET /v1/decisions).
    learn_curator_url: str = "http://127.0.0.1:8004"
    # The poster's API, for the engagement of what was published (empty: no engagement in the set).
    learn_poster_url: str = ""
    # The generator learns by itself after this many new decisions (0: only when `deephype learn` runs).
    learn_every_decisions: int = Field(default=0, ge=0)
    # How often the generator looks for new decisions (and for a newly promoted version).
    learn_poll_seconds: float = Field(default=300.0, gt=0)

    # --- outside services (real clients; tests point the base URLs at fake servers) ---
    x_bearer_token: SecretStr = SecretStr("")
    x_consumer_key: SecretStr = SecretStr("")
    x_consumer_secret: SecretStr = SecretStr("")
    x_access_token: SecretStr = SecretStr("")
    x_access_token_secret: SecretStr = SecretStr("")
    x_base_url: str = "https://api.x.com"
    mastodon_base_url: str = ""
    mastodon_access_token: SecretStr = SecretStr("")
    bluesky_handle: str = ""
    bluesky_app_password: SecretStr = SecretStr("")
    bluesky_base_url: str = "https://bsky.social"
    x_timelines: list[str] = Field(default_factory=lambda: ["mentions"])
    x_search_query: str = ""
    x_payment_pause_seconds: float = Field(default=3600.0, gt=0)
    mastodon_timelines: list[str] = Field(default_factory=lambda: ["notifications", "home"])
    mastodon_hashtags: list[str] = Field(default_factory=list)
    bluesky_timelines: list[str] = Field(default_factory=lambda: ["notifications", "timeline"])
    platform_default_rate_limit_pause_seconds: float = Field(default=60.0, gt=0)
    platform_timeout_seconds: float = Field(default=30.0, gt=0)
    platform_page_size: int = Field(default=50, ge=1, le=100)
    platform_max_pages: int = Field(default=5, ge=1, le=100)
    spotify_client_id: SecretStr = SecretStr("")
    spotify_client_secret: SecretStr = SecretStr("")
    spotify_api_url: str = "https://api.spotify.com/v1/"
    spotify_auth_url: str = "https://accounts.spotify.com/api/token"
    musicbrainz_base_url: str = "musicbrainz.org"
    musicbrainz_contact: str = "deephype (https://github.com/deephype/deephype)"

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """DEEPHYPE_<NAME>_FILE=/path reads a secret from that file (Docker secrets)."""
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            if field.annotation is not SecretStr:
                continue
            path = os.environ.get(f"DEEPHYPE_{name.upper()}_FILE")
            if path and not data.get(name):
                data[name] = Path(path).read_text(encoding="utf-8").strip()
        return data

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with some values changed (model_copy would skip validation)."""
        return type(self)(_env_file=None, **(self.model_dump() | changes))  # type: ignore[call-arg]

    def secret_values(self) -> list[str]:
        """Every configured secret, so tests can check none reaches a log."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        # Each approval key is a secret on its own too (a log could show one without the others).
        keys = [key.strip() for key in self.approval_keys.get_secret_value().split(",") if key.strip()]
        return values + [key for key in keys if key not in values]

    def amqp_urls(self) -> list[str]:
        """The broker nodes named by amqp_url (one, or a comma-separated cluster)."""
        return [url.strip() for url in self.amqp_url.split(",") if url.strip()]

    def database_url_for(self, service: str) -> str:
        """The PostgreSQL URL holding `service`'s state; empty for SQLite."""
        own = getattr(self, f"{service}_database_url", None)
        if isinstance(own, SecretStr) and own.get_secret_value():
            return own.get_secret_value()
        return self.database_url.get_secret_value()

    def service_state_dir(self, service: str) -> Path:
        path = self.state_dir / service
        path.mkdir(parents=True, exist_ok=True)
        return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
