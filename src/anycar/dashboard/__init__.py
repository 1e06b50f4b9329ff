"""The cabin dashboard: static HTML/CSS/JS served by a Starlette app that the hub mounts."""

from anycar.dashboard.server import STATIC_DIR, app, dashboard_config

__all__ = ["STATIC_DIR", "app", "dashboard_config"]
