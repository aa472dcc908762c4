"""Renderings of an :class:`~pinset.audit._model.AuditReport` for people and for tools.

:mod:`~pinset.audit._output.text` for a terminal, :mod:`~pinset.audit._output.json`
for scripts, :mod:`~pinset.audit._output.sarif` for code-scanning tools and
:mod:`~pinset.audit._output.junit` for CI test reports. Each is a pure function of
the report; only the CLI writes files.
"""
