"""Terminal micro-logistics on the fleet cloud: orders, planning with a solver library,
re-dispatch. Fleet side: it imports ``anycar.fleet`` and ``anycar.wire``, never the hub."""
