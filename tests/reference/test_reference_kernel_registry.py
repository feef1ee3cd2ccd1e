"""The kernel registry: coverage of every built-in op kind, duplicates, evaluate_op errors."""
from __future__ import annotations

import numpy as np
import pytest

import npuc.ir.ops  # noqa: F401
from npuc.backends.reference.kernels import FLOAT_KERNELS, KERNEL_SOURCES, evaluate_op, kernel_for, register_kernel
from npuc.errors import ExecutionError, PluginError
from npuc.ir.op import Op
from npuc.ir.op_spec import OPS

#: Conversion kinds of the quantized IR: they need the tensors' QuantParams, which a float kernel
#: (op, arrays) never sees; the quantized executor mode implements them.
QUANTIZED_IR_KINDS = {"Quantize", "Dequantize", "Requantize"}


def test_every_builtin_float_op_kind_has_a_kernel():
    builtin = {k for k in OPS.kinds() if OPS.source(k) == "builtin"} - QUANTIZED_IR_KINDS
    assert len(builtin) >= 60
    assert sorted(builtin - set(FLOAT_KERNELS)) == []


def test_duplicate_registration_names_both_sources():
    with pytest.raises(PluginError, match=r"'Conv'.*builtin.*my_plugin"):
        register_kernel("Conv", lambda op, ins: ins, source="my_plugin")
    assert KERNEL_SOURCES["Conv"] == "builtin"


def test_kernel_for_unknown_kind_is_a_clear_error():
    with pytest.raises(ExecutionError, match="NoSuchKind"):
        kernel_for("NoSuchKind")


def test_evaluate_op_runs_one_op_and_wraps_failures():
    op = Op("add1", "Add", {}, origin=("node_a",))
    (y,) = evaluate_op(op, [np.ones((2, 3), np.float32), np.full((3,), 2, np.float32)])
    np.testing.assert_array_equal(y, np.full((2, 3), 3, np.float32))
    with pytest.raises(ExecutionError, match=r"Add op 'add1', origin \['node_a'\].*float32\[2, 3\].*float32\[4\]"):
        evaluate_op(op, [np.ones((2, 3), np.float32), np.ones((4,), np.float32)])
