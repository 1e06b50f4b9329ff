"""W3C VISS v2 over WebSocket and HTTP, on the signal broker."""

from anycar.api.viss.errors import VissError
from anycar.api.viss.service import VissLimits, VissService, VissSession
from anycar.api.viss.ws import VissWebSocketServer

__all__ = ["VissError", "VissLimits", "VissService", "VissSession", "VissWebSocketServer"]
