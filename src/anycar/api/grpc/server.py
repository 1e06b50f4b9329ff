"""The gRPC server: kuksa.val.v2 (and the v1 part kuksa-client needs) on one port."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from anycar.api.auth import Authorizer
from anycar.api.grpc.decoding import StrictDecoding
from anycar.api.grpc.val_v1 import ValV1Service
from anycar.api.grpc.val_v2 import ValV2Service, wire_handlers
from anycar.broker import SignalBroker
from anycar.errors import ConfigError

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_CONCURRENT_STREAMS = 256
STREAM_WINDOW_BYTES = 64 * 1024  # ~25 messages of 100 signals in flight per stream


class GrpcServer:
    """Start with ``await start()``; ``port`` is the bound port (useful with port 0)."""

    def __init__(
        self,
        broker: SignalBroker,
        authorizer: Authorizer,
        *,
        host: str = "127.0.0.1",
        port: int = 55555,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_update_age_s: float | None = None,
    ) -> None:
        self.broker = broker
        self.host = host
        self.requested_port = port
        self.port = 0
        self.v2 = ValV2Service(broker, authorizer, max_update_age_s=max_update_age_s)
        self.v1 = ValV1Service(broker, self.v2)
        self._tls = (tls_cert, tls_key)
        self._max = max_message_bytes
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[StrictDecoding()],  # a corrupt request is INVALID_ARGUMENT, not UNKNOWN
            options=[
                ("grpc.max_receive_message_length", self._max),
                ("grpc.max_send_message_length", self._max),
                ("grpc.so_reuseport", 0),
                # one client's flood of calls queues behind its own streams, not everyone's
                ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
                # flow control with a fixed window: a provider faster than the hub waits instead of
                # piling megabytes (BDP probing would grow the window) into a queue nobody sees
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
            ],
        )
        v2_grpc.add_VALServicer_to_server(self.v2, server)
        # then the hot streams again with the hub's own wire handling (a later registration of a
        # method replaces the generated one): val_v2.wire_handlers
        server.add_registered_method_handlers("kuksa.val.v2.VAL", wire_handlers(self.v2))
        v1_grpc.add_VALServicer_to_server(self.v1, server)
        address = f"{self.host}:{self.requested_port}"
        cert, key = self._tls
        if cert is not None and key is not None:
            try:
                creds = grpc.ssl_server_credentials([(Path(key).read_bytes(), Path(cert).read_bytes())])
            except OSError as exc:
                raise ConfigError(f"cannot read TLS certificate or key: {exc}") from None
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
        if self.port == 0:
            raise ConfigError(f"gRPC cannot listen on {address} (port in use or address not local)")
        await server.start()
        self._server = server
        log.info("kuksa.val.v2 gRPC listening on %s:%d", self.host, self.port)

    async def stop(self, grace: float = 1.0) -> None:
        self.v2.close()
        self.v1.watches.close()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
