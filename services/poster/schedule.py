"""When the next post may go out: a human pace, so the bot is neither rate-limited nor unfollowed.

Per platform: at most N posts in any rolling hour and M in any rolling day, at least a minimum gap between
two plus a random jitter (posts do not come like clockwork), and none in the quiet hours of a time zone.
Pure functions of the times already taken, so a test drives them with a clock of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from deephype.common.settings import Settings

Clock = Callable[[], datetime]
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
UTC_ZONE = ZoneInfo("UTC")


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """ "23:00-07:00" → (23:00, 07:00); empty → None. The window may wrap midnight."""
    if not value:
        return None
    start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    return (start, end) if start != end else None


@dataclass(frozen=True)
class Pacing:
    max_per_hour: int = 4
    max_per_day: int = 24
    min_gap: timedelta = timedelta(minutes=10)
    jitter: timedelta = timedelta(minutes=5)
    quiet_hours: tuple[time, time] | None = None
    zone: ZoneInfo = UTC_ZONE

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacing:
        return cls(
            max_per_hour=settings.poster_max_per_hour,
            max_per_day=settings.poster_max_per_day,
            min_gap=timedelta(seconds=settings.poster_min_gap_seconds),
            jitter=timedelta(seconds=settings.poster_gap_jitter_seconds),
            quiet_hours=parse_quiet_hours(settings.poster_quiet_hours),
            zone=ZoneInfo(settings.poster_timezone),
        )

    def quiet_until(self, when: datetime) -> datetime | None:
        """The end of the quiet hours `when` falls in; None when it is not in them."""
        if self.quiet_hours is None:
            return None
        start, end = self.quiet_hours
        local = when.astimezone(self.zone)
        day, now = local.date(), local.time().replace(tzinfo=None)
        if start < end:
            inside, end_day = start <= now < end, day
        else:  # wraps midnight: 23:00-07:00
            inside, end_day = (now >= start or now < end), (day + DAY if now >= start else day)
        if not inside:
            return None
        return datetime.combine(end_day, end, tzinfo=self.zone).astimezone(UTC)

    def next_slot(self, earliest: datetime, taken: Sequence[datetime], rng: random.Random) -> datetime:
        """The first time at or after `earliest` (and after every time in `taken`) that keeps every rule."""
        taken = sorted(taken)
        slot = earliest
        if taken:
            slot = max(slot, taken[-1] + self.min_gap + self.jitter * rng.random())
        for _ in range(10_000):
            if (quiet_end := self.quiet_until(slot)) is not None:
                slot = quiet_end
                continue
            in_hour = [t for t in taken if slot - HOUR < t <= slot]
            if len(in_hour) >= self.max_per_hour:
                slot = in_hour[len(in_hour) - self.max_per_hour] + HOUR
                continue
            in_day = [t for t in taken if slot - DAY < t <= slot]
            if len(in_day) >= self.max_per_day:
                slot = in_day[len(in_day) - self.max_per_day] + DAY
                continue
            return slot
        raise ValueError("no time keeps the pacing rules (quiet hours all day?)")


class TestClock:
    """A clock a test moves by hand: the schedule is checked without sleeping."""

    __test__ = False  # not a pytest class

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def stamp(when: datetime) -> str:
    """One fixed, sortable text form for times in SQLite."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
