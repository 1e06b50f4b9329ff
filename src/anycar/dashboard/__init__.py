"""The cabin dashboard: static HTML/CSS/JS served by a Starlette app that the hub mounts."""

from anycar.dashboard.server import SCHEMA_NAMES, STATIC_DIR, api_schema, app, dashboard_config

__all__ = ["SCHEMA_NAMES", "STATIC_DIR", "api_schema", "app", "dashboard_config"]
