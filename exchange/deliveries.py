"""Delivery reports never add up past what a pool can make.

Each delivery report claims that ``p`` device-seconds of one pool went to one contract
during the contract's delivery window, whole hours ``[r, d)``. One report alone is capped
by its window (``p <= devices x 3600 x (d - r)``), but reports add up: over all of a
pool's contracts, in every tier and window, the device-seconds reported must be ones the
pool could have made. The rule, and why it is exact:

**Claim.** Let ``C = devices x 3600`` (the device-seconds a pool makes in one hour). A set
of reports for one pool is physically possible (there are amounts ``x[j][h] >= 0`` of
report ``j`` in hour ``h`` of its window, summing to ``p[j]`` over the window, with at
most ``C`` in any hour over all reports) if and only if, for every interval of hours
``[a, b)``, the reports whose windows lie inside it sum to at most ``C x (b - a)``.

Device-seconds are divisible: the devices of a pool work side by side, so a report may
use any of them in any second of its window, and only each hour's total is bounded.

*Necessity.* Reports inside ``[a, b)`` can only be placed in its hours, which hold
``C x (b - a)`` device-seconds.

*Sufficiency.* Placing the reports is a transportation problem (reports supply, hours
receive up to ``C`` each). By the supply-demand theorem (Gale, 1957; max-flow min-cut), it
is feasible if and only if every set ``S`` of reports sums to at most ``C`` times the
number of hours its windows cover. Those hours form disjoint maximal intervals
``I_1 ... I_k``, and each report of ``S`` lies inside one of them, so
``p(S) <= sum P(I_i) <= sum C |I_i|``, where ``P(I)`` sums the reports inside ``I``: the
interval condition implies every set condition. (This is Horn's condition for preemptive
scheduling with release times and deadlines.)

**Checking one new report is exact and cheap.** Windows never cross a UTC midnight: a
tier's ``window_hours`` divides 24 and its windows start at multiples of their length
from the epoch, a midnight. So the reports inside any interval split by day, and the
condition holds for every interval if it holds for every interval within one day. If it
holds before a report ``n`` arrives, adding ``n`` changes the sums only of the intervals
that contain ``n``'s window; so ``n`` is accepted if and only if, for each interval
``[a, b)`` of its day with ``a <= r_n`` and ``b >= d_n``, the reports inside plus
``p[n]`` stay within ``C x (b - a)``. That is at most 25 x 25 intervals over at most 60
distinct windows of a day (every window length dividing 24), in integers.

A report refused leaves the book as it was.
"""

from __future__ import annotations

from exchange.invariants import check

__all__ = ["DAY_HOURS", "HOUR_SECONDS", "DeliveryBook", "interval_room"]

DAY_HOURS = 24
HOUR_SECONDS = 3600

#: Reported device-seconds of one pool and one day: (first hour, end hour) -> total.
DayReports = dict[tuple[int, int], int]


def interval_room(day: DayReports, devices: int, first: int, end: int) -> int:
    """Device-seconds a new report for hours ``[first, end)`` of a day may still carry:
    the least, over the intervals ``[a, b)`` of the day containing the window, of the
    pool's device-seconds in the interval minus those reported inside it."""
    check(0 <= first < end <= DAY_HOURS, "window %s-%s is not inside one day", first, end)
    return _least_slack(day, devices, first, end)


def _least_slack(day: DayReports, devices: int, a_max: int, b_min: int) -> int:
    """The least of ``devices x 3600 x (b - a)`` minus the reports inside ``[a, b)``, over
    the intervals of the day with ``a <= a_max`` and ``b >= b_min``."""
    by_end: list[list[tuple[int, int]]] = [[] for _ in range(DAY_HOURS + 1)]
    for (start, stop), seconds in day.items():
        by_end[stop].append((start, seconds))
    per_hour = devices * HOUR_SECONDS
    least = per_hour * DAY_HOURS
    for a in range(min(a_max, DAY_HOURS - 1) + 1):
        inside = 0
        for b in range(a + 1, DAY_HOURS + 1):
            for start, seconds in by_end[b]:
                if start >= a:
                    inside += seconds
            if b >= b_min:
                least = min(least, per_hour * (b - a) - inside)
    return least


class DeliveryBook:
    """Device-seconds reported per pool, day and window, against what the pool makes."""

    def __init__(self) -> None:
        # (pool id, day since the epoch) -> {(first hour, end hour) of the day: total}
        self.reported: dict[tuple[int, int], DayReports] = {}

    @staticmethod
    def _where(first_hour: int, hours: int) -> tuple[int, int, int]:
        day, first = divmod(first_hour, DAY_HOURS)
        return day, first, first + hours

    def room(self, pool_id: int, devices: int, first_hour: int, hours: int) -> int:
        """What a new report of ``pool_id`` for the window starting at ``first_hour``
        (hours since the epoch) and lasting ``hours`` may carry, in device-seconds."""
        day, first, end = self._where(first_hour, hours)
        return interval_room(self.reported.get((pool_id, day), {}), devices, first, end)

    def record(self, pool_id: int, first_hour: int, hours: int, device_seconds: int) -> None:
        """Count an accepted report (the caller checked it against :meth:`room`)."""
        day, first, end = self._where(first_hour, hours)
        reports = self.reported.setdefault((pool_id, day), {})
        reports[(first, end)] = reports.get((first, end), 0) + device_seconds

    def forget_before(self, day: int) -> None:
        """Forget the reports of the days before ``day`` (days since the epoch): no report
        can come for them any more."""
        for key in [k for k in self.reported if k[1] < day]:
            del self.reported[key]

    def check(self, devices: dict[int, int]) -> None:
        """Every interval of every day of every pool within what the pool makes
        (``devices``: pool id -> device count)."""
        for (pool_id, day), reports in self.reported.items():
            slack = _least_slack(reports, devices[pool_id], DAY_HOURS, 0)
            check(slack >= 0, "pool %s reported past its capacity on day %s", pool_id, day)
