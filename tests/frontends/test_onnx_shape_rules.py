"""Properties of the ONNX argument rules shared by lowering and import-time evaluation."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from npuc.frontends.onnx_node import normalize_slice

BIG = 2**63 - 1


def onnx_slice_indices(dim: int, start: int, end: int, step: int) -> list[int]:
    """The ONNX Slice specification, literally (no Python negative-index wrap)."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return list(range(start, end, step))


bounds = st.one_of(st.integers(-12, 12), st.sampled_from([BIG, -BIG, -BIG - 1]))


@settings(max_examples=400, deadline=None)
@given(dim=st.integers(1, 9), start=bounds, end=bounds, step=st.integers(-4, 4).filter(bool))
def test_normalized_slice_selects_what_onnx_selects(dim, start, end, step) -> None:
    s, e, p = normalize_slice(dim, start, end, step)
    assert list(range(dim)[s:e:p]) == onnx_slice_indices(dim, start, end, step)
    assert -dim - 1 <= e <= dim and 0 <= s <= dim
