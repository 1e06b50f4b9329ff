"""The fleet console: the operator's web app, served by ``anycar fleet serve`` at ``/console/``.

Static files (ES modules, MapLibre GL JS vendored under ``static/vendor``), the base map built
from the OpenStreetMap extract (``data/basemap.geojson``, ODbL) and ``config.json``. Every byte
comes from this origin (the CSP says so); the page reads the REST API and the live feed with the
user's API token, which it keeps in sessionStorage.
"""

from anycar.fleet.console.app import CSP, ConsoleConfig, console_app

__all__ = ["CSP", "ConsoleConfig", "console_app"]
