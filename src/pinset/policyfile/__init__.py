"""The policy file (``pinset.toml`` or JSON) <-> :class:`~pinset.policy.Policy`.

:mod:`~pinset.policyfile._reader` parses and checks the file, naming the key and
line at fault; :mod:`~pinset.policyfile._writer` writes the same format back;
:mod:`~pinset.policyfile._positions` finds the line of a key or array item in the
text, which ``tomllib`` and ``json`` do not report. :meth:`Policy.load` and
:meth:`Policy.to_toml` delegate here, so most callers never import this package.
"""
