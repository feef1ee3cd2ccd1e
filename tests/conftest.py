"""Puts tests/ on sys.path so every test folder can import the shared helpers in tests/npuc_testing.py."""
from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
