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
        latest_first = sorted(taken, reverse=True)
        return self.next_slot_after(
            earliest, lambda k: latest_first[k - 1] if 0 < k <= len(latest_first) else None, rng
        )

    def next_slot_after(
        self, earliest: datetime, kth_latest: Callable[[int], datetime | None], rng: random.Random
    ) -> datetime:
        """next_slot, asking only for the k-th latest time taken (1: the latest; None: fewer than k), so a
        store answers from an index instead of handing over a whole day of slots."""
        slot = earliest
        if (latest := kth_latest(1)) is not None:
            slot = max(slot, latest + self.min_gap + self.jitter * rng.random())
        # From here every taken time is at or before `slot`, so a window ending at `slot` is full exactly when
        # its limit-th latest time lies inside it, and the slot moves to when that one leaves the window.
        for _ in range(10_000):
            if (quiet_end := self.quiet_until(slot)) is not None:
                slot = quiet_end
                continue
            if (oldest_in_hour := kth_latest(self.max_per_hour)) is not None and oldest_in_hour > slot - HOUR:
                slot = oldest_in_hour + HOUR
                continue
            if (oldest_in_day := kth_latest(self.max_per_day)) is not None and oldest_in_day > slot - DAY:
                slot = oldest_in_day + DAY
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
    """One fixed, sortable text form for times in SQLite: 2026-12-03T06:45:00.123456Z."""
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def unstamp(value: str) -> datetime:
    return datetime.fromisoformat(value)  # reads the Z as UTC; a tenth of strptime's cost
