"""The pin-failure report collector (extra ``collector``): FastAPI, SQLAlchemy 2, Alembic.

    app = pinset.collector.create_app(pinset.collector.Settings(db_url="sqlite:///r.db"))

Run it with ``pinset collector serve``; see docs/reporting.md.
"""

from pinset.collector._app import create_app
from pinset.collector._normalize import NormalizedReport, ReportError, normalize
from pinset.collector._settings import TOKEN_ENV, Settings

__all__ = [
    "TOKEN_ENV",
    "NormalizedReport",
    "ReportError",
    "Settings",
    "create_app",
    "normalize",
]
