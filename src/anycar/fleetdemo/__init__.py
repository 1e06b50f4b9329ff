"""The whole system in one command (``make demo``, ``anycar demo --fleet``).

The composition root that assembles both sides — the fleet cloud and many hubs — so it lives
outside both: ``plan`` (the fleet and its rounds on ``anycar.roads``), ``hubs`` (the hubs of one
process), ``run`` (the broker, the fleet cloud, the registry and the hub processes).
"""
