"""report.html: one offline page with the ranked table, the charts and the worst layers' plots.

No scripts, no external styles or fonts; images are PNG files referenced by
paths relative to the report folder (so the folder can be moved or zipped).
"""
from __future__ import annotations

import html
from pathlib import Path

from npuc.analysis.report import AnalysisReport, LayerResult

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #eee; } td.l { text-align: left; }
tr.flag td { background: #fde2e2; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0; }
.small { color: #666; font-size: 12px; }
pre { background: #f6f6f6; padding: 8px; font-size: 12px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _db(v: float | None) -> str:
    return "exact" if v is None else f"{v:.1f}"


def _img(rel: str, alt: str) -> str:
    return f'<img src="{_e(rel)}" alt="{_e(alt)}">'


def _row(r: LayerResult, outputs: list[str]) -> str:
    cells = [f"<td>{r.rank}</td>"]
    name = f'<a href="#layer-{r.rank}">{_e(r.name)}</a>' if r.plots else _e(r.name)
    cells.append(f'<td class="l">{name}</td><td class="l">{_e(r.kind)}</td><td class="l">{_e(r.dtype)}</td>')
    for o in outputs:
        cells.append(f"<td>{_db(r.sensitivity_db[o]) if o in r.sensitivity_db else ''}</td>")
    cells.append(f"<td>{_db(r.layer_snr_min_db)}</td>")
    kl_out = max((v for k, v in r.kl.items() if k.startswith("out")), default=None)
    cells.append(f"<td>{'' if kl_out is None else f'{kl_out:.3f}'}</td>")
    kl_w = r.kl.get("weight")
    cells.append(f"<td>{'' if kl_w is None else f'{kl_w:.3f}'}</td>")
    cells.append(f'<td class="l">{_e("; ".join(r.reasons))}</td>')
    cells.append(f'<td class="l small">{_e(", ".join(r.origin))}</td>')
    return f'<tr{" class=flag" if r.flagged else ""}>' + "".join(cells) + "</tr>"


def render_html(report: AnalysisReport, entropy_file: str = "quantization_entropy.txt",
                json_file: str = "report.json") -> str:
    """The page as a string."""
    out: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>npuc analysis: {_e(report.model)}</title><style>{_STYLE}</style></head><body>"]
    out.append(f"<h1>Layer analysis of {_e(report.model)}</h1>")
    out.append(f'<p>{report.samples} sample(s); SNR in dB = 10&middot;log10(signal power / noise power), summed '
               f"over all samples; layers under {report.threshold_db:g} dB are flagged. "
               f'Data: <a href="{_e(json_file)}">{_e(json_file)}</a>, '
               f'<a href="{_e(entropy_file)}">{_e(entropy_file)}</a>.</p>')
    if report.seconds:
        out.append('<p class="small">time: ' + ", ".join(f"{_e(k)} {v:.1f}s" for k, v in report.seconds.items())
                   + "</p>")
    out.append("<h2>Model outputs, all layers quantized</h2><table><tr><th>output</th><th>SNR dB</th></tr>")
    for name, v in report.output_snr_db.items():
        out.append(f'<tr><td class="l">{_e(name)}</td><td>{_db(v)}</td></tr>')
    out.append("</table>")
    flagged = report.flagged
    out.append(f"<h2>Flagged layers ({len(flagged)})</h2>")
    out.append("<p>" + (", ".join(_e(r.name) for r in flagged) if flagged else "none") + "</p>")
    out.append("<h2>Charts</h2>")
    for key, rel in report.charts.items():
        out.append(f"<h3>{_e(key)}</h3>{_img(rel, key)}")
    outputs = [o for o in report.outputs if any(o in r.sensitivity_db for r in report.layers)]
    out.append("<h2>Layers, worst first</h2><table><tr><th>#</th><th>layer</th><th>op</th><th>dtype</th>")
    out.extend(f"<th>only this layer quantized:<br>SNR at {_e(o)}</th>" for o in outputs)
    out.append("<th>own output SNR<br>(all quantized)</th><th>KL out</th><th>KL weight</th><th>flag</th>"
               "<th>origin</th></tr>")
    out.extend(_row(r, outputs) for r in report.layers)
    out.append("</table>")
    plotted = [r for r in report.layers if r.plots]
    if plotted:
        out.append(f"<h2>Worst {len(plotted)} layers: histograms and scatter</h2>")
    for r in plotted:
        out.append(f'<h3 id="layer-{r.rank}">#{r.rank} {_e(r.name)} ({_e(r.kind)}, {_e(r.dtype)})</h3>')
        worst = "; ".join(f"{_e(t)}: " + ", ".join(f"ch {c} {v:.1f} dB" for c, v in chans[:5])
                          for t, chans in r.worst_channels.items())
        if worst:
            out.append(f'<p class="small">worst channels: {worst}</p>')
        for key, rel in r.plots.items():
            out.append(_img(rel, f"{r.name} {key}"))
    out.append("<h2>Quantization entropy (highest first)</h2><pre>")
    out.extend(_e(e.line()) for e in report.entropy[:40])
    if len(report.entropy) > 40:
        out.append(f"... {len(report.entropy) - 40} more in {_e(entropy_file)}")
    out.append("</pre></body></html>")
    return "\n".join(out) + "\n"


def write_html(report: AnalysisReport, path: Path) -> Path:
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path
