"""The composition root: a hub is a broker, the API servers and the components plugged in."""

from anycar.hub.config import HubConfig
from anycar.hub.hub import Component, Hub

__all__ = ["Component", "Hub", "HubConfig"]
