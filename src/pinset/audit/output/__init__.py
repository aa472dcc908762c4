"""Renderings of an :class:`~pinset.audit.model.AuditReport` for people and for tools.

:mod:`~pinset.audit.output.text` for a terminal, :mod:`~pinset.audit.output.json`
for scripts, :mod:`~pinset.audit.output.sarif` for code-scanning tools and
:mod:`~pinset.audit.output.junit` for CI test reports. Each is a pure function of
the report; only the CLI writes files.
"""
