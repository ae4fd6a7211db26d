"""One Spark Connect session of the local backend: a Spark driver with the Connect plugin on a
private loopback port, behind a gRPC proxy that checks ``x-aws-proxy-auth`` on every call.

The driver is the Livy sessions' runner (``livy_runner``) started with the Connect plugin, so
process handling, the private ``spark.local.dir`` and clean-up are the same as for Livy. The proxy
forwards every method as raw bytes (on the wire every gRPC call is a stream), so it needs no
Spark Connect protobufs; it counts calls in flight, which is what BUSY and IDLE mean here.
grpcio comes with ``pyspark[connect]``; the backend imports this module only to start a session.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from emr_cmk_notebook.local.spark_driver import (
    DEFAULT_SPARK_CONF,
    FORCED_SPARK_CONF,
    SparkDriver,
)

AUTH_HEADER = "x-aws-proxy-auth"
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TokenBook:
    """The auth tokens a session accepts, each until its expiry (epoch seconds)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._tokens: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, token: str, expires_at: float) -> None:
        with self._lock:
            self._tokens[token] = expires_at

    def check(self, presented: str | None) -> str | None:
        """None when ``presented`` is a live token, else why it is refused (never the token)."""
        if not presented:
            return f"missing {AUTH_HEADER}: pass the authToken of GetSessionEndpoint"
        now = self._clock()
        with self._lock:
            for token, expires_at in self._tokens.items():
                if hmac.compare_digest(token.encode(), presented.encode()):
                    if expires_at <= now:
                        return "the auth token has expired: call GetSessionEndpoint for a new one"
                    return None
        return f"the {AUTH_HEADER} token is not valid for this session"


class AuthProxy:
    """A gRPC server on 127.0.0.1 that forwards authorised calls to the Spark Connect port."""

    def __init__(self, target_port: int, tokens: TokenBook, on_activity: Callable[[int], None]):
        self.tokens = tokens
        self._on_activity = on_activity
        self._in_flight = 0
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(f"127.0.0.1:{target_port}", options=_UNLIMITED)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="connect-proxy"),
            handlers=[_Forwarder(self)],
            options=_UNLIMITED,
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def close(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()

    def _track(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            count = self._in_flight
        self._on_activity(count)

    def forward(self, method: str, requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        """Relay one call; refused calls end UNAUTHENTICATED before anything reaches Spark."""
        metadata = tuple(context.invocation_metadata())
        refusal = self.tokens.check(dict(metadata).get(AUTH_HEADER))
        if refusal is not None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal)
        outgoing = tuple((k, v) for k, v in metadata if k != AUTH_HEADER)
        self._track(+1)
        try:
            call = self._channel.stream_stream(method)(requests, metadata=outgoing)
            context.add_callback(call.cancel)
            yield from call
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED and not context.is_active():
                return
            context.set_trailing_metadata(err.trailing_metadata() or ())
            if err.code() == grpc.StatusCode.UNAVAILABLE:
                context.abort(err.code(), "the session's Spark Connect server is not running")
            context.abort(err.code(), err.details() or "")
        finally:
            self._track(-1)


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, proxy: AuthProxy):
        self._proxy = proxy

    def service(self, details: Any) -> Any:
        method = details.method
        return grpc.stream_stream_rpc_method_handler(
            lambda requests, context: self._proxy.forward(method, requests, context)
        )


class ConnectServer:
    """A session's Spark driver with the Connect plugin and the proxy in front of it."""

    def __init__(self, name: str, work_dir: Path, spark_conf: dict[str, str]):
        self.name = name
        self.tokens = TokenBook()
        self.log: list[str] = []
        self.spark_port = free_port()
        self.proxy: AuthProxy | None = None
        self._work_dir = Path(work_dir)
        self._spark_conf = spark_conf
        self._driver: SparkDriver | None = None
        self.local_dir: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._driver.pid if self._driver else None

    def start(self, on_activity: Callable[[int], None], timeout: float = 180.0) -> None:
        """Start Spark and the proxy; raises RuntimeError with Spark's reason when it cannot."""
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self.local_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=self._work_dir))
        conf = {
            **DEFAULT_SPARK_CONF,
            **self._spark_conf,
            **FORCED_SPARK_CONF,
            "spark.plugins": CONNECT_PLUGIN,
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.spark_port),
            "spark.local.dir": str(self.local_dir),
            "spark.app.name": self.name,
        }
        self._driver = SparkDriver.launch()
        threading.Thread(target=self._keep_log, daemon=True).start()
        self._driver.send({"op": "start", "conf": conf})
        event = self._first_event(timeout)
        if event.get("event") != "ready":
            raise RuntimeError(event.get("message") or "the Spark driver exited while starting")
        self.proxy = AuthProxy(self.spark_port, self.tokens, on_activity)

    def alive(self) -> bool:
        """Whether the driver process runs and its Spark Connect port still takes connections."""
        if self._driver is None or self._driver.process.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", self.spark_port), timeout=2).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Stop the proxy, kill the driver's process group, remove the local dir (idempotent)."""
        proxy, self.proxy = self.proxy, None
        driver, self._driver = self._driver, None
        if proxy is not None:
            proxy.close()
        if driver is not None:
            driver.stop()
        if self.local_dir is not None:
            shutil.rmtree(self.local_dir, ignore_errors=True)

    def _first_event(self, timeout: float) -> dict[str, Any]:
        assert self._driver is not None
        result: dict[str, Any] = {}
        stdout = self._driver.process.stdout

        def read() -> None:
            with contextlib.suppress(OSError, ValueError):
                for line in stdout:
                    event = json.loads(line)
                    if event.get("event") in ("ready", "failed"):
                        result.update(event)
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        return result or {"message": f"Spark did not start within {timeout:g} s"}

    def _keep_log(self) -> None:
        driver = self._driver
        if driver is None:
            return
        with contextlib.suppress(OSError, ValueError):
            for line in driver.process.stderr:
                self.log.append(line.rstrip("\n"))
                del self.log[:-200]
