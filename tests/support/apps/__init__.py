"""Importable RunlaneApp modules for entrypoint tests (``--app tests.support.apps.<module>:<attr>``).

Importing them triggers nothing: the apps only declare queues and tasks.
"""
