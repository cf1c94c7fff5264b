from __future__ import annotations

import os
from typing import Iterator

import pytest

from support import Sluice, start_sluice


@pytest.fixture(scope="session")
def sluice() -> Iterator[Sluice]:
    """A live Sluice: `SLUICE_URL` + `SLUICE_API_KEY` when set, else one this suite starts."""
    if os.environ.get("SLUICE_URL"):
        yield Sluice(os.environ["SLUICE_URL"].rstrip("/"), os.environ["SLUICE_API_KEY"])
        return
    server = start_sluice()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def full_disk_sluice() -> Iterator[Sluice]:
    """A Sluice whose disk reserve can never be met: every send is refused with 507."""
    server = start_sluice("[storage]\nmin_free_bytes = 1000000000000000000\n", "/healthz")
    try:
        yield server
    finally:
        server.stop()
