"""Shared fixtures: a fresh catalog and broker per test."""

from __future__ import annotations

import pytest

from anycar.broker import SignalBroker
from anycar.model import Catalog


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.load_default()


@pytest.fixture
def broker(catalog: Catalog) -> SignalBroker:
    return SignalBroker(catalog)
