"""The signal broker and what it hands out: datapoints, providers, subscriptions, actuations."""

from anycar.broker.actuation import (
    ActuationRejected,
    ActuationRequest,
    ActuationResult,
    ActuationStatus,
)
from anycar.broker.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.broker.filters import ChangeCondition, InvalidFilter, RangeCondition, SubscriptionFilter
from anycar.broker.guard import SafetyCritical, WriteGuard
from anycar.broker.provider import Provider
from anycar.broker.subscription import Subscription

__all__ = [
    "ActuationRejected",
    "ActuationRequest",
    "ActuationResult",
    "ActuationStatus",
    "ChangeCondition",
    "Datapoint",
    "InvalidFilter",
    "Provider",
    "RangeCondition",
    "SafetyCritical",
    "SignalBroker",
    "Subscription",
    "SubscriptionFilter",
    "WriteGuard",
]
