"""Which ONNX nodes npuc can import: the up-front scan behind UnsupportedOpsError and `npuc check`."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from npuc.frontends.onnx_node import NodeView
from npuc.frontends.onnx_ops import LOWERINGS
from npuc.frontends.onnx_static_values import SHAPE_ONLY_OPS, STATIC_EVALUATORS
from npuc.frontends.summary import UnsupportedOp

DEFAULT_DOMAINS = ("", "ai.onnx")


def unsupported_reason(node: NodeView, dynamic_inputs: bool) -> str | None:
    """The report key of a node npuc cannot import ('Foo', 'com.x:Bar', 'Resize (mode=cubic)'), or None."""
    op = node.op_type
    domain = node.proto.domain
    if domain not in DEFAULT_DOMAINS:
        return f"{domain}:{op}"
    rule = LOWERINGS.get(op)
    if rule is None:
        if op not in STATIC_EVALUATORS:
            return op
        if dynamic_inputs and op not in SHAPE_ONLY_OPS:
            return f"{op} (on run-time values; only constant inputs are supported)"
        return None
    variant = rule.check(node) if rule.check else None
    return f"{op} ({variant})" if variant else None


def find_unsupported(nodes: Iterable[NodeView], dynamic: set[str]) -> list[UnsupportedOp]:
    """Every unsupported op type with the names of its nodes, in first-use order.

    dynamic: the values that depend on a model input (an op that npuc only
    evaluates at import time is unsupported when it reads one of them).
    """
    found: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        reason = unsupported_reason(node, any(i in dynamic for i in node.inputs if i))
        if reason:
            found[reason].append(node.name)
    return [UnsupportedOp(op, tuple(names)) for op, names in found.items()]


def supported_op_types() -> list[str]:
    """Every ONNX op type npuc imports (lowered to IR ops or evaluated at import time)."""
    return sorted(set(LOWERINGS) | set(STATIC_EVALUATORS))
