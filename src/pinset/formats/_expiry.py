"""When each platform stops enforcing a pin-set that expires on a given date.

pinset's policy is UTC: pins are enforced until 00:00:00 UTC of the expiration
date. The platforms read the same ``yyyy-MM-dd`` differently:

* TrustKit (iOS, macOS) parses it with an ``NSDateFormatter`` set to UTC:
  the same instant as pinset.
* Android (``XmlConfigSource``) and TrustKit-Android parse it with a
  ``SimpleDateFormat`` in the device's default time zone: local midnight,
  which falls anywhere from 14 hours before 00:00 UTC (UTC+14, Kiribati) to
  12 hours after it (UTC−12).

:func:`expiration_window` gives that window as UTC instants; importers record
it in :attr:`~pinset.formats._model.PlatformDomain.expires_between`, the audit
dates ``pin-set-expiring`` and ``pin-set-expired`` from its earliest instant,
and exporters warn with :func:`device_midnight_warning`. Pure: no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal

from pinset.policy import DomainRule

__all__ = ["EARLIEST", "LATEST", "Clock", "device_midnight_warning", "expiration_window"]

Clock = Literal["utc", "device"]

# The time zones farthest from UTC in use: UTC+14 (Line Islands) and UTC−12 (Baker Island).
EARLIEST = dt.timedelta(hours=-14)
LATEST = dt.timedelta(hours=12)


def expiration_window(date: dt.date, clock: Clock) -> tuple[dt.datetime, dt.datetime]:
    """The earliest and latest UTC instants at which a platform stops enforcing ``date``.

    ``clock="utc"`` (TrustKit iOS, pinset) gives 00:00 UTC twice; ``"device"``
    (Android, TrustKit-Android) gives local midnight in the farthest zones.
    """
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=dt.timezone.utc)
    if clock == "utc":
        return midnight, midnight
    return midnight + EARLIEST, midnight + LATEST


def device_midnight_warning(rules: Iterable[DomainRule], platform: str) -> str | None:
    """The export warning for ``rules`` with an expiration on a device-local-midnight platform."""
    dated = [(r.pattern, r.expiration) for r in rules if not r.exclude and r.expiration]
    if not dated:
        return None
    shown = []
    for pattern, date in dated[:3]:
        first, last = expiration_window(date, "device")
        shown.append(
            f"{pattern} ({date}: from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)"
        )
    more = f" and {len(dated) - 3} more" if len(dated) > 3 else ""
    return (
        f"{platform} stops enforcing a pin-set at the device's local midnight of its expiration "
        f"date, not at 00:00 UTC as pinset does: {', '.join(shown)}{more}; devices east of UTC "
        "drop the pins up to 14 h early"
    )
