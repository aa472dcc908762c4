"""``pinset demo``: the whole pinning story on loopback, narrated (needs the ``cli`` extra).

``run(console)`` plays it and returns a :class:`DemoResult`; the CLI prints its
summary as a table or JSON.
"""

from pinset.demo._scenario import HOST, DemoResult, StepResult, run

__all__ = ["HOST", "DemoResult", "StepResult", "run"]
