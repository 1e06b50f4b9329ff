"""The MQTT 5 connection, on aiomqtt (asyncio, over paho-mqtt 2, the Eclipse reference client).

One thing aiomqtt does not give: the reason code of each PUBACK. An MQTT 5 broker may answer
a publish with "not authorized" (its ACL) or "quota exceeded"; a spool must not take such an
answer for delivery. ``Client.publish_acked`` returns the code, so the uplink can tell.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from anycar.uplink.config import UplinkConfig
from anycar.wire import MAX_PAYLOAD

SESSION_EXPIRY_S = 7 * 86400  # the broker keeps commands and campaigns queued for an offline vehicle


class Client(aiomqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: dict[int, asyncio.Future[int]] = {}
        self._early: dict[int, int] = {}

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        super()._on_publish(client, userdata, mid, reason_code, properties)
        code = int(getattr(reason_code, "value", 0) or 0)
        fut = self._acks.pop(mid, None)
        if fut is None:
            self._early[mid] = code  # PUBACK before publish() returned
        elif not fut.done():
            fut.set_result(code)

    def _on_disconnect(self, client: Any, userdata: Any, *args: Any, **kwargs: Any) -> None:
        super()._on_disconnect(client, userdata, *args, **kwargs)
        pending, self._acks = self._acks, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost before PUBACK"))

    async def publish_acked(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int:
        """Publish; for QoS 1 wait for the PUBACK and return its reason code (0 = success,
        >= 0x80 = refused). QoS 0 returns 0 once the packet is handed to the socket."""
        info = self._client.publish(topic, payload, qos, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "could not publish")
        if qos == 0:
            return 0
        if info.mid in self._early:
            return self._early.pop(info.mid)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = fut
        try:
            return await fut
        finally:
            self._acks.pop(info.mid, None)


def publish_properties(content_type: str, expiry_s: float | None) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = content_type
    if expiry_s is not None:
        props.MessageExpiryInterval = max(1, math.ceil(expiry_s))
    return props


def make_client(cfg: UplinkConfig, will: tuple[str, bytes, str] | None, *, session: bool = True) -> Client:
    """A client for ``cfg``: credentials, TLS (client certificate if given), a retained last will
    (topic, payload, content type), and a session the broker keeps while the vehicle is away."""
    v5 = cfg.protocol == 5
    connect_props = None
    if v5 and session:
        connect_props = Properties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = SESSION_EXPIRY_S
    if v5:  # the broker must not even send us what decoding would refuse
        connect_props = connect_props or Properties(PacketTypes.CONNECT)
        connect_props.MaximumPacketSize = MAX_PAYLOAD + 4096
    last_will = None
    if will is not None:
        will_props = None
        if v5:
            will_props = Properties(PacketTypes.WILLMESSAGE)
            will_props.ContentType = will[2]
        last_will = aiomqtt.Will(will[0], will[1], qos=1, retain=True, properties=will_props)
    tls = None
    if cfg.tls_on:
        tls = aiomqtt.TLSParameters(
            ca_certs=str(cfg.tls.ca) if cfg.tls.ca else None,
            certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
            keyfile=str(cfg.tls.key) if cfg.tls.key else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return Client(
        cfg.host,
        cfg.port,
        username=cfg.username,
        password=cfg.password,
        identifier=cfg.client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=last_will,
        clean_session=None if v5 else not session,
        clean_start=(not session) if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        keepalive=cfg.keepalive_s,
        timeout=10,
        max_inflight_messages=cfg.window,
        max_queued_incoming_messages=1000,
        properties=connect_props,
        tls_params=tls,
    )
