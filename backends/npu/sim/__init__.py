"""Bit-exact numba simulator of compiled NPU programs (see simulator.py)."""
from npuc.backends.npu.sim.simulator import DISPATCH, Simulator, simulate

__all__ = ["DISPATCH", "Simulator", "simulate"]
