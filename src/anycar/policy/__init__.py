"""The car stays in control: grants and privileges, driving-state UX restrictions, load
shedding by priority, and the event log of every decision."""

from anycar.policy.access import ACCESSORIES_BRANCH, AccessControl
from anycar.policy.driving import DrivingConfig, DrivingState, UxRule
from anycar.policy.engine import LoadStatus, PolicyEngine
from anycar.policy.errors import PermissionDenied, Restricted
from anycar.policy.events import Event, EventLog
from anycar.policy.grants import GrantStore
from anycar.policy.power import PowerConfig, PowerMonitor, Priority
from anycar.policy.privileges import Grant, Privilege

__all__ = [
    "ACCESSORIES_BRANCH",
    "AccessControl",
    "DrivingConfig",
    "DrivingState",
    "Event",
    "EventLog",
    "Grant",
    "GrantStore",
    "LoadStatus",
    "PermissionDenied",
    "PolicyEngine",
    "PowerConfig",
    "PowerMonitor",
    "Priority",
    "Privilege",
    "Restricted",
    "UxRule",
]
