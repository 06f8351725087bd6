"""Scripts that multi-process Postgres tests run as real processes, plus the test-side controller.

Every script is run as ``python <script>.py`` with the repository root on ``PYTHONPATH``, talks
JSON lines on stdout (one object per line, ``{"event": ..., "pid": ...}``) and takes commands, one per
line, on stdin. EOF on stdin means "stop now", so a script never outlives a test that died.
"""
