"""The fleet cloud: what many hubs report to, and what an operator looks at.

It reads vehicles through ``anycar.wire`` only (an import-linter contract says so). Rooms:
``db`` (tables, engine, migrations), ``store`` (batched writes and the queries behind the API),
``registry`` (tenants, users, vehicles, tokens), ``mosquitto`` (the broker's password file and
ACL), ``ingest`` (MQTT workers), ``osmand`` (plain GPS trackers over HTTP), ``api`` (REST,
OpenAPI, live WebSocket), ``server`` (what ``anycar fleet serve`` runs). See docs/fleet.md.
"""

from anycar.fleet import daily as _daily  # noqa: F401  # position_days joins db.metadata
from anycar.fleet import domain_tables as _domain_tables  # noqa: F401  # its tables join db.metadata
