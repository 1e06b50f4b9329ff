"""What a fitted accessory draws from the car's 12 V system now, in watts.

The simulated car's 12 V rail carries this on top of its own loads (``Simulator.accessory_load``,
wired by ``anycar.hub.assemble``), so a cooler left on sags the rail that then sheds it: the
policy reacts to a load the accessories themselves make, as in a real car.

In order: an accessory the hub does not hear from, or that it shed, draws its manifest's
``power.standby_w``; one that reports a sensor in watts draws that (within standby..peak); one
whose traits name a ``working`` signal (``traits.yaml``: a light's ``IsLightOn``, a cooler's
``IsOn``, a fan's ``FanSpeed``) draws ``typical_w`` while that is true or above 0 and
``standby_w`` otherwise; any other draws ``typical_w`` while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anycar.model import Catalog, NodeType

if TYPE_CHECKING:
    from anycar.accessories.manager import Fitted


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def draw_w(fitted: Fitted, catalog: Catalog, value_of: Callable[[str], Any]) -> float:
    """The accessory's draw now (W), from its manifest and the values it publishes."""
    power = fitted.manifest.power
    if fitted.session is None or fitted.silent or (fitted.load is not None and fitted.load.shed):
        return power.standby_w
    reported: float | None = None
    for path in fitted.binding.paths.values():
        sig = catalog.find(path)
        if sig is None or sig.type is not NodeType.SENSOR or sig.unit != "W":
            continue
        watts = _number(value_of(path))
        if watts is not None:
            reported = (reported or 0.0) + watts
    if reported is not None:
        return min(max(reported, power.standby_w), power.peak_w)
    switches = [t.working for t in fitted.manifest.traits if t.working]
    if not switches:
        return power.typical_w
    for name in switches:
        where = fitted.binding.paths.get(name)
        value = value_of(where) if where is not None else None
        if value is True or ((n := _number(value)) is not None and n > 0):
            return power.typical_w
    return power.standby_w
