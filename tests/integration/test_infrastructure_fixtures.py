"""The integration fixtures themselves work: a real PostgreSQL 15 and a moto SQS, on 127.0.0.1."""

from __future__ import annotations

import socket
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from tests.support.moto_server import make_sqs_client
from tests.support.pg_cluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def test_cluster_is_postgresql_15(pg_cluster: PostgresCluster) -> None:
    with psycopg.connect(pg_cluster.libpq_dsn, connect_timeout=10) as conn:
        row = conn.execute("select version(), current_database(), current_user").fetchone()
        server_version_num = conn.info.server_version
    assert row is not None
    version, database, user = row
    assert version.startswith("PostgreSQL 15.")
    assert 150000 <= server_version_num < 160000
    assert database == pg_cluster.database
    assert user == pg_cluster.user


def test_cluster_listens_on_loopback_only_with_test_settings(pg_cluster: PostgresCluster) -> None:
    with psycopg.connect(pg_cluster.libpq_dsn, connect_timeout=10) as conn:

        def show(name: str) -> str:
            row = conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
            assert row is not None
            return str(row[0])

        assert show("listen_addresses") == "127.0.0.1"
        assert show("port") == str(pg_cluster.port)
        assert show("unix_socket_directories") == str(pg_cluster.socket_dir)
        assert show("fsync") == "off"
        assert show("synchronous_commit") == "off"
        assert show("full_page_writes") == "off"
        assert show("max_connections") == "200"


def test_dsns_point_at_loopback(pg_cluster: PostgresCluster) -> None:
    suffix = f"{pg_cluster.user}@127.0.0.1:{pg_cluster.port}/{pg_cluster.database}"
    assert pg_cluster.dsn == f"postgresql+psycopg://{suffix}"
    assert pg_cluster.libpq_dsn == f"postgresql://{suffix}"
    # And the port really is bound on 127.0.0.1 (plain TCP connect, no libpq involved).
    with socket.create_connection(("127.0.0.1", pg_cluster.port), timeout=5):
        pass


def test_pg_schema_is_fresh_and_usable(pg_cluster: PostgresCluster, pg_schema: str) -> None:
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True, connect_timeout=10) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = %s", (pg_schema,)
        ).fetchone()
        assert tables == (0,)
        table = sql.Identifier(pg_schema, "probe")
        conn.execute(sql.SQL("create table {} (id int primary key, body text not null)").format(table))
        conn.execute(sql.SQL("insert into {} values (1, 'hello')").format(table))
        assert conn.execute(sql.SQL("select body from {}").format(table)).fetchone() == ("hello",)


def test_restart_drops_connections_and_keeps_data(pg_cluster: PostgresCluster, pg_schema: str) -> None:
    table = sql.Identifier(pg_schema, f"survives_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("create table {} (v text)").format(table))
        conn.execute(sql.SQL("insert into {} values ('before restart')").format(table))
        old = psycopg.connect(pg_cluster.libpq_dsn, autocommit=True, connect_timeout=10)
    port = pg_cluster.port
    try:
        pg_cluster.restart()
        with pytest.raises(psycopg.OperationalError):
            old.execute("select 1")
    finally:
        old.close()
    assert pg_cluster.port == port
    with psycopg.connect(pg_cluster.libpq_dsn, connect_timeout=10) as conn:
        assert conn.execute(sql.SQL("select v from {}").format(table)).fetchone() == ("before restart",)


def test_sqs_send_and_receive(sqs_client: SQSClient) -> None:
    queue_url = sqs_client.create_queue(QueueName=f"runlane-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sent = sqs_client.send_message(QueueUrl=queue_url, MessageBody='{"run_id": "r-1"}')
    received = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages = received.get("Messages", [])
    assert [m["Body"] for m in messages] == ['{"run_id": "r-1"}']
    assert messages[0]["MessageId"] == sent["MessageId"]
    sqs_client.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
    again = sqs_client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    assert again.get("Messages", []) == []


def test_sqs_client_starts_from_an_empty_server(sqs_client: SQSClient) -> None:
    assert sqs_client.list_queues().get("QueueUrls", []) == []


def test_sqs_client_ignores_proxy_environment(
    moto_sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: had the client used it, every call would fail.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    client = make_sqs_client(moto_sqs_endpoint)
    assert moto_sqs_endpoint.startswith("http://127.0.0.1:")
    client.list_queues()


def test_tests_here_are_marked_integration(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("integration") is not None
