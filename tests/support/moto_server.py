"""An in-process moto server (a fake AWS) on 127.0.0.1, and boto3 SQS clients that talk to it.

The clients carry explicit dummy credentials, region and endpoint, and ignore proxy settings from
the environment, so they never look anything up on the network or in ``~/.aws``: every request
goes to the moto server on 127.0.0.1.
"""

from __future__ import annotations

import threading
import urllib.request
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["MotoServer", "MotoServerError", "make_sqs_client", "reset_moto"]

HOST = "127.0.0.1"
REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # moto accepts any credentials


class MotoServerError(RuntimeError):
    """The moto server did not start or stop in time."""


class MotoServer:
    """``ThreadedMotoServer`` bound to 127.0.0.1 on a free port (chosen by the OS)."""

    def __init__(self, *, start_timeout: float = 30.0) -> None:
        self.start_timeout = start_timeout
        self._server: ThreadedMotoServer | None = None
        self._endpoint: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint is None:
            raise MotoServerError("moto server not started")
        return self._endpoint

    def start(self) -> str:
        """Start the server and return its endpoint URL, e.g. ``http://127.0.0.1:40123``."""
        if self._endpoint is not None:
            return self._endpoint
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        # ThreadedMotoServer.start() waits without a timeout for its thread to bind; run it in a
        # helper thread so a failure to bind cannot hang the test session.
        errors: list[BaseException] = []

        def _start() -> None:
            try:
                server.start()
            except BaseException as exc:
                errors.append(exc)

        starter = threading.Thread(target=_start, name="moto-server-start", daemon=True)
        starter.start()
        starter.join(self.start_timeout)
        if starter.is_alive() or errors:
            raise MotoServerError(f"moto server did not start within {self.start_timeout}s: {errors}")
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint = f"http://{host}:{port}"
        return self._endpoint

    def stop(self) -> None:
        server, self._server, self._endpoint = self._server, None, None
        if server is None:
            return
        server.stop()  # shutdown() polls every 0.5 s, then the thread is joined
        wsgi_server = getattr(server, "_server", None)
        if wsgi_server is not None:  # release the listening socket now, not at garbage collection
            wsgi_server.server_close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def reset_moto(endpoint_url: str, *, timeout: float = 10.0) -> None:
    """Forget every queue and message in the server (moto's ``/moto-api/reset``)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST", data=b"")
    with _no_proxy_opener().open(request, timeout=timeout) as response:
        response.read()


def client_config(**overrides: Any) -> Config:
    """botocore config for tests: bounded timeouts and retries, and no proxies from the env."""
    settings: dict[str, Any] = {
        "region_name": REGION,
        "connect_timeout": 5,
        "read_timeout": 30,
        "retries": {"max_attempts": 2, "mode": "standard"},
        "proxies": {},  # an empty dict (not None) stops botocore reading HTTP(S)_PROXY
    }
    settings.update(overrides)
    return Config(**settings)


def make_sqs_client(endpoint_url: str, **config_overrides: Any) -> SQSClient:
    """A real boto3 SQS client for the moto server at ``endpoint_url``."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    return session.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        aws_session_token=None,
        config=client_config(**config_overrides),
    )
