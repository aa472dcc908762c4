"""The policy file (``pinset.toml`` or JSON) <-> :class:`~pinset.policy.Policy`.

:mod:`~pinset.policyfile.reader` parses and checks the file, naming the key and
line at fault; :mod:`~pinset.policyfile.writer` writes the same format back;
:mod:`~pinset.policyfile.positions` finds the line of a key or array item in the
text, which ``tomllib`` and ``json`` do not report. :meth:`Policy.load` and
:meth:`Policy.to_toml` delegate here, so most callers never import this package.
"""
