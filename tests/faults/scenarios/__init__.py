"""The scenarios, in the order the suite runs them; each has ``NAME``, ``CI``, ``FULL`` and ``run``."""
