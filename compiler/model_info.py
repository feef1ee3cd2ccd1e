"""The human-readable model info of a compiled binary (inputs, outputs, quantization, layout notes)."""
from __future__ import annotations

from npuc.backends.npu.program import Program, TensorEntry


def _quant_text(e: TensorEntry) -> str:
    q = e.quant
    if q is None:
        return "float (no quantization)" if e.dtype.is_float else "-"
    if q.axis is None:
        return f"scale={q.scale[0]:.8g} zero_point={q.zero_point[0]} ({'signed' if q.signed else 'unsigned'} {q.bits}-bit)"
    return f"per-channel axis {q.axis}, {len(q.scale)} scales in [{min(q.scale):.4g}, {max(q.scale):.4g}]"


def model_info_text(program: Program) -> str:
    """Inputs and outputs (name, shape, layout, dtype, quantization, format notes), like a vendor model_info."""
    meta = program.metadata
    graph_meta = meta.get("graph_meta", {})
    lines = [f"model          {program.name}"]
    for key, label in (("source", "source"), ("npuc_version", "compiled by"), ("target", "target")):
        if meta.get(key):
            lines.append(f"{label:<14} {meta[key]}")
    lines.append(f"layers         {len(program.layers)}")
    lines.append(f"arena          {program.arena_bytes:,} bytes of activation buffers")
    lines.append("")
    norm = graph_meta.get("normalization", {})
    io_layouts = graph_meta.get("io_layouts", {})
    for title, ids in (("inputs", program.inputs), ("outputs", program.outputs)):
        lines.append(f"{title}:")
        for tid in ids:
            e = program.tensors[tid]
            lines.append(f"  {e.name}")
            lines.append(f"    shape        {list(e.shape)}")
            lines.append(f"    layout       {e.layout or '-'}")
            lines.append(f"    dtype        {e.dtype.name.lower()}")
            lines.append(f"    quantization {_quant_text(e)}")
            if e.quant is not None and title == "outputs":
                lines.append("    format       real = scale * (q - zero_point)")
            if e.name in io_layouts:
                info = io_layouts[e.name]
                lines.append(f"    source layout {info.get('source_layout')} (to_source permutation {info.get('to_source')})")
            if e.name in norm:
                n = norm[e.name]
                lines.append(f"    normalization (x - {n['mean']}) / {n['std']} is part of the model: feed raw values")
        lines.append("")
    pruned = graph_meta.get("pruned_outputs") or {}
    if pruned:
        lines.append("pruned tail layers (outputs keep the layout before them):")
        items = pruned.items() if isinstance(pruned, dict) else enumerate(pruned)
        for key, info in items:
            lines.append(f"  {key}: {info}")
        lines.append("")
    return "\n".join(lines)
