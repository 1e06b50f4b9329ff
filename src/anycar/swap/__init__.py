"""Battery-swap stations over OCPP 2.1 (fleet side): the CSMS, the inventory and battery
passport, the swap flow, charging plans, a station simulator and the queue simulation."""
