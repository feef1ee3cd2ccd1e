"""Fixtures for these tests live in quant_testing.py (a uniquely named module: conftest modules of
several folders must not be imported by name)."""
from quant_testing import *  # noqa: F401,F403
