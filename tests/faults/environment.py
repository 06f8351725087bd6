"""The world a scenario runs in: one PostgreSQL cluster, fresh migrated schemas, a moto server.

Everything listens on 127.0.0.1 and is torn down in ``finally`` blocks: the cluster is stopped and
its directory removed, the moto server stopped, every schema dropped.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from runlane.infrastructure.postgres import get_postgres_storage_migration_sql
from tests.faults.ledger import install_ledger
from tests.support.moto_server import MotoServer
from tests.support.pg_cluster import PostgresCluster


@dataclass
class FaultWorld:
    """Shared infrastructure for a suite run; scenarios each take their own schema."""

    cluster: PostgresCluster
    workdir: Path
    _moto: MotoServer | None = None
    _schemas: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.cluster.dsn

    @property
    def libpq_dsn(self) -> str:
        return self.cluster.libpq_dsn

    def new_schema(self, prefix: str) -> str:
        """A uniquely named schema with the runlane migrations and the fault ledger tables."""
        name = f"f_{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.libpq_dsn, connect_timeout=10) as conn:
            conn.execute(get_postgres_storage_migration_sql(name))
            install_ledger(conn, name)
        self._schemas.append(name)
        return name

    def scratch_dir(self, name: str) -> Path:
        path = self.workdir / f"{name}_{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path

    def outage(self, seconds: float) -> None:
        """Stop the server (``pg_ctl stop -m fast``), keep it down for ``seconds``, start it again.

        ``PostgresCluster`` only offers ``restart()``, which is back within a second; a longer
        outage needs its ``pg_ctl`` wrapper (same data directory, same port).
        """
        cluster = self.cluster
        stopped = cluster._pg_ctl("stop", "-m", "fast")
        if stopped.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {stopped.stdout}")
        try:
            time.sleep(seconds)
        finally:
            started = cluster._pg_ctl("start", "-l", str(cluster.log_file))
            if started.returncode != 0:
                raise RuntimeError(f"pg_ctl start failed: {started.stdout}")
            cluster._wait_ready()

    def moto_endpoint(self) -> str:
        """The moto server's endpoint, started on first use."""
        if self._moto is None:
            # The server runs in this process; its request log would drown the figures.
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self._moto = MotoServer()
            self._moto.start()
        return self._moto.endpoint_url

    def close(self) -> None:
        try:
            if self._moto is not None:
                self._moto.stop()
        finally:
            self._moto = None
            if self.cluster.running:
                with (
                    contextlib.suppress(psycopg.Error),
                    psycopg.connect(self.libpq_dsn, autocommit=True, connect_timeout=10) as conn,
                ):
                    for schema in self._schemas:
                        conn.execute(
                            sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
                        )
            self._schemas.clear()


@contextlib.contextmanager
def fault_world() -> Iterator[FaultWorld]:
    """Start a cluster (and, lazily, moto) for one suite run; everything is stopped afterwards."""
    cluster = PostgresCluster(settings={"max_connections": "300"})
    with tempfile.TemporaryDirectory(prefix="runlane-faults-") as workdir:
        cluster.start()
        world = FaultWorld(cluster=cluster, workdir=Path(workdir))
        try:
            yield world
        finally:
            try:
                world.close()
            finally:
                cluster.stop()
