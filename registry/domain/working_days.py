"""Working days in China's official calendar, and deadlines counted in them (pure).

The State Council's yearly holiday notice (国务院办公厅关于某年部分节假日安排的通知)
fixes each year's public holidays (days off, possibly inside a weekend) and the
weekend days that are official working days instead (调休). It comes out late in
the year before, so the registry always knows only some years: a year is *known*
when a ``YearNotice`` for it was given (the ``chinesecalendar`` library, or the
operator's override file: registry/working_calendar.py builds the calendar).

- In a known year a day is a working day when the notice makes it one (a 调休
  weekend day), or when it is Monday to Friday and not a holiday.
- In an unknown year Monday to Friday count. A deadline whose count reaches a day
  of such a year is *provisional*: ``Deadline.unknown_years`` names the years it
  guessed, answers show it as provisional, and the stored deadline is counted
  again once the year is known (registry/credit/objections.py
  ``recount_provisional_deadlines``).

Counting (国办发〔2025〕22号 deadlines; DOMAIN.md "Objections"): the start day is not
counted; the ``n``-th working day after it is the deadline, the last day on which
the act is on time. Zero days is the start day itself, never provisional.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import msgspec

# A year outside this range is a typo, not a notice.
FIRST_YEAR = 1949
LAST_YEAR = 2200


class YearNotice(msgspec.Struct, frozen=True, kw_only=True):
    """One year's holiday notice: its days off and its working weekend days (调休).

    ``holidays`` may include weekend days inside a holiday span (notices list spans
    such as 10月1日至7日); only ``working_weekends`` turn a day into a working day.
    ``source`` says where the notice came from, for logs and errors.
    """

    year: int
    holidays: frozenset[date]
    working_weekends: frozenset[date]
    source: str

    def __post_init__(self) -> None:
        if not FIRST_YEAR <= self.year <= LAST_YEAR:
            raise ValueError(f"year {self.year} is outside {FIRST_YEAR}..{LAST_YEAR}")
        for kind, days in (("holidays", self.holidays), ("working_weekends", self.working_weekends)):
            for day in sorted(days):
                if day.year != self.year:
                    raise ValueError(f"{kind}: {day.isoformat()} is not in {self.year}")
        for day in sorted(self.working_weekends):
            if day.weekday() < 5:
                raise ValueError(
                    f"working_weekends: {day.isoformat()} is a {day.strftime('%A')}; list only "
                    "the Saturdays and Sundays the notice makes working days"
                )
        both = sorted(self.holidays & self.working_weekends)
        if both:
            raise ValueError(f"{both[0].isoformat()} is listed both as a holiday and as a "
                             "working weekend day")


class Deadline(msgspec.Struct, frozen=True, kw_only=True):
    """``working_days`` working days after ``start``: ``day`` is the last day on time.

    ``unknown_years``: the years whose days were counted Monday to Friday because
    no notice for them is known; empty when the deadline is final.
    """

    start: date
    working_days: int
    day: date
    unknown_years: tuple[int, ...] = ()

    @property
    def provisional(self) -> bool:
        return bool(self.unknown_years)


class WorkingCalendar:
    """The official working days of the years whose notices it holds (immutable)."""

    def __init__(self, notices: Iterable[YearNotice] = ()) -> None:
        years: dict[int, YearNotice] = {}
        for notice in notices:
            if notice.year in years:
                raise ValueError(f"two notices for {notice.year}: {years[notice.year].source} "
                                 f"and {notice.source}")
            years[notice.year] = notice
        self._years: Mapping[int, YearNotice] = years

    @property
    def years(self) -> frozenset[int]:
        """The known years."""
        return frozenset(self._years)

    def notice(self, year: int) -> YearNotice | None:
        return self._years.get(year)

    def knows(self, year: int) -> bool:
        return year in self._years

    def overridden_by(self, notices: Iterable[YearNotice]) -> WorkingCalendar:
        """This calendar with ``notices`` in place of its own for their years (the override
        wins whole years: a notice is never merged with another one for the same year)."""
        replacing = list(notices)
        mine = [n for year, n in sorted(self._years.items())
                if year not in {r.year for r in replacing}]
        return WorkingCalendar([*mine, *replacing])

    def is_working_day(self, day: date) -> bool:
        """Official working day; Monday to Friday in a year without a known notice."""
        notice = self._years.get(day.year)
        if notice is None:
            return day.weekday() < 5
        if day in notice.working_weekends:
            return True
        return day.weekday() < 5 and day not in notice.holidays

    def add_working_days(self, start: date, days: int) -> Deadline:
        """The ``days``-th working day after ``start`` (start not counted); ``start`` for 0.

        Provisional when any day after ``start`` up to the result lies in an unknown year.
        One step per day: deadlines are weeks long, and holidays make shortcuts wrong.
        """
        if type(days) is not int or days < 0:
            raise ValueError(f"working days must be a whole number >= 0, got {days!r}")
        day = start
        unknown: set[int] = set()
        left = days
        while left:
            day += timedelta(days=1)
            if day.year not in self._years:
                unknown.add(day.year)
            if self.is_working_day(day):
                left -= 1
        return Deadline(start=start, working_days=days, day=day,
                        unknown_years=tuple(sorted(unknown)))
