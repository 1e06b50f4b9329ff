"""The uplink: every hub reports to the fleet over MQTT 5 and loses nothing.

Campaigns (``campaigns``, run by ``collector``) and events (``events``) make wire messages
(``anycar.wire``); the spool on disk (``spool``) holds each until the broker acknowledges it;
the link (``link``, on ``mqtt``) keeps the connection and drains the spool; commands from the
fleet (``commands``) go through the policy to the broker. ``UplinkComponent`` plugs it all into
the hub.
"""

from anycar.uplink.component import UplinkComponent, default_spool_path
from anycar.uplink.config import UplinkConfig

__all__ = ["UplinkComponent", "UplinkConfig", "default_spool_path"]
