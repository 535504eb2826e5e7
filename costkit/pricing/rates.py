"""Per-token rates and the shapes a price can take: long-context thresholds, range tables, off-peak windows."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any, Final

import attrs

from .._call import Usage
from ._common import _check_rate, _check_required_rate


@attrs.frozen(slots=True)
class Rates:
    """The four per-token rates one request bills at (tier, batch and cache fallbacks resolved)."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    @classmethod
    def billed(cls, input: float, output: float, cache_read: float | None, cache_write: float | None) -> Rates:
        """Rates where a cache rate the provider does not publish (None) bills at the input rate."""
        return cls(
            input, output, input if cache_read is None else cache_read, input if cache_write is None else cache_write
        )

    def cost(self, usage: Usage) -> float:
        return (
            usage.uncached_input_tokens * self.input
            + usage.cached_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )


@attrs.frozen(kw_only=True, slots=True)
class ThresholdTier:
    """Long-context rates that replace the base rates once the prompt exceeds ``above_tokens``.

    ``None`` means "keep the rate of the tier below". The ``batch_*`` rates are the map's
    ``*_above_N_tokens_batches`` keys.
    """

    above_tokens: int
    input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)


@attrs.frozen(kw_only=True, slots=True)
class RangeTier:
    """One row of a ``tiered_pricing`` table: it bills a whole request whose prompt is in (start, end]."""

    start: float
    end: float
    input_per_token: float = attrs.field(validator=_check_required_rate)
    output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)


_WEEKDAYS: Final = {
    "mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3, "wednesday": 3,
    "thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "fri": 5, "friday": 5,
    "sat": 6, "saturday": 6, "sun": 7, "sunday": 7,
}  # fmt: skip


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(hhmm)
    return h * 60 + m


def _parse_windows(value: Any) -> tuple[tuple[int, int], ...]:
    """``"HH:MM-HH:MM"`` (UTC) strings -> (start, end) minutes; malformed windows are skipped."""
    items = (value,) if isinstance(value, str) else value if isinstance(value, Sequence) else ()
    windows = []
    for item in items:
        if not isinstance(item, str) or item.count("-") != 1:
            continue
        start, end = item.split("-")
        try:
            windows.append((_minutes(start), _minutes(end)))
        except ValueError:
            continue
    return tuple(windows)


def _in_windows(windows: tuple[tuple[int, int], ...], minute: int) -> bool:
    # start inclusive, end exclusive; a window may wrap past midnight; start == end is the whole day
    return any((start <= minute < end) if start < end else (minute >= start or minute < end) for start, end in windows)


@functools.lru_cache(maxsize=32)
def _calendar(name: str | None) -> tzinfo:
    """The calendar weekdays are read in (an IANA zone name; UTC when absent or unknown)."""
    if name:
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            return timezone.utc
    return timezone.utc


@attrs.frozen(kw_only=True, slots=True)
class OffPeak:
    """Time-of-day rates (``off_peak_pricing``, e.g. DeepSeek's discount hours) that replace the
    standard ones while a window is open. ``rules`` pair ISO weekdays (1 = Monday, read in
    ``weekday_timezone``; None = every day) with UTC windows in minutes.
    """

    input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    rules: tuple[tuple[frozenset[int] | None, tuple[tuple[int, int], ...]], ...] = ()
    weekday_timezone: str | None = None

    def is_open(self, at: datetime | None = None) -> bool:
        """Whether the off-peak rates apply at ``at`` (default: now). A naive ``at`` is taken as UTC."""
        if at is None:
            now = time.time()  # cheaper than datetime.now() on the per-call path
            minute = int(now // 60) % 1440
            utc: datetime | None = None
        else:
            utc = at.astimezone(timezone.utc) if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
            minute = utc.hour * 60 + utc.minute
        weekday: int | None = None
        for days, windows in self.rules:
            if days is not None:
                if weekday is None:
                    if utc is None and self.weekday_timezone is None:
                        weekday = (int(now // 86400) + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
                    else:
                        if utc is None:
                            utc = datetime.fromtimestamp(now, timezone.utc)
                        weekday = utc.astimezone(_calendar(self.weekday_timezone)).isoweekday()
                if weekday not in days:
                    continue
            if _in_windows(windows, minute):
                return True
        return False

    def apply(self, rates: Rates, read_missing: bool, write_missing: bool) -> Rates:
        """Swap in the off-peak rates; cache rates the model lacks follow the off-peak input rate."""
        inp = rates.input if self.input_per_token is None else self.input_per_token
        read = rates.cache_read if not read_missing else inp
        write = rates.cache_write if not write_missing else inp
        return Rates(
            inp,
            rates.output if self.output_per_token is None else self.output_per_token,
            read if self.cache_read_per_token is None else self.cache_read_per_token,
            write if self.cache_write_per_token is None else self.cache_write_per_token,
        )
