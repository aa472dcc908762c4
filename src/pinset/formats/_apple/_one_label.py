"""How the Apple formats write pinset's one-label wildcard ``*.name``.

Neither ATS nor TrustKit has one: the nearest is ``name`` itself with its subdomains,
which pins more than the policy does. :func:`one_label_as_subdomains` refuses that
next to a rule for ``name`` itself and otherwise warns; each format says what it
widens.
"""

from __future__ import annotations

import warnings

from pinset.formats._model import ExportError, ExportWarning
from pinset.policy import DomainRule

__all__ = ["one_label_as_subdomains"]


def one_label_as_subdomains(
    rule: DomainRule, exact_names: set[str], platform: str, include_key: str, widening: str
) -> None:
    """Check that the one-label rule ``*.name`` may be written as ``name`` with ``include_key``.

    Refused when ``exact_names`` has a rule for the name itself; otherwise a warning
    whose ``widening`` says what ``platform`` pins beyond the policy.
    """
    if rule.name in exact_names:
        raise ExportError(
            f"{platform} cannot express {rule.pattern} next to a rule for {rule.name}",
            key="name",
            hint=f"merge the two rules into {rule.name} with include-subdomains",
        )
    warnings.warn(
        f"{rule.pattern} is written as {rule.name} with {include_key}: {widening}",
        ExportWarning,
        stacklevel=5,
    )
