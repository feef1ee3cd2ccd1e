"""Noise budget of MediaPipe's face detectors compiled int8, and the mixed precision that passes them
(tests/frontends/tflite/test_blazeface_int8.py; results in docs/tflite.md, "Noise budget of the failing
detectors").

    python benchmarks/blazeface_noise_budget.py sensitivity [model stems]   # npuc's per-layer analysis, ~1 min
    python benchmarks/blazeface_noise_budget.py bounds [model stems]        # 16-bit / float16 bounds, ~2 min
    python benchmarks/blazeface_noise_budget.py rule [model stems] [coverage=X] [headroom=X] [heads=int8]

``sensitivity``: for each fold of the test (the calibration set that evaluates on grace_hopper or on the
astronaut), the model is compiled with the fold's CHOSEN recipe and analysed on every calibration item
(npuc.analysis: SNR at each output with only layer n quantized). Printed per output: the all-quantized
SNR, the "budget" (noise powers of the single-layer runs added up, as if independent), and the share of
that noise in the worst 1 / 5 / 10 / 20 layers, the heads, the first conv and the input normalization,
with the worst layers listed (* marks heads).

``bounds``: the pooled portrait SNR of the test's protocol (two folds) and the timing model's cycles with
int8, 16-bit activations (a16_w8) everywhere or on the heads only, float16 heads, and both.

``rule``: blazeface_mixed's rule as test_mixed_precision_keeps_20db_at_the_outputs runs it (defaults), or
a variant of it; prints the 16-bit layers per fold, the pooled SNR and the cycles int8 -> mixed.
Default models: the three detectors under 20 dB in int8 (short_range is front's network).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "frontends" / "tflite"))
import blazeface_mixed as M  # noqa: E402
import test_blazeface_int8 as T  # noqa: E402

FAILING = ("face_detection_front", "face_detection_back", "face_detection_full_range_sparse")


def fold_calib(model: Path, evaluated: T.Portrait, folder: Path) -> Path:
    (other,) = [q for q in T.PORTRAITS if q is not evaluated]
    (folder / "calib").mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(T._calib_images(T._input_kind(model), other)):
        img.save(folder / "calib" / f"item_{i}.png")
    return folder / "calib"


def sensitivity(model: Path, evaluated: T.Portrait, folder: Path, extra: str | None = None):
    """(report, compile result) of npuc's analysis on the fold's calibration items, chosen recipe."""
    calib = fold_calib(model, evaluated, folder)
    if extra is None:
        extra = T._recipe_text(model, T.CHOSEN.get((model.name, evaluated.name), "plain"))
    result, _ = T._compile(model, calib, folder, extra)
    return M.analyse(result, str(calib / "*.png"), T.Preprocessing(align="center")), result


def short(name: str) -> str:
    """A readable layer name (the sparse model's names list every fused TF op)."""
    last = name.split(";")[-1]
    return last.removeprefix("model_1/model/").split("/")[0] if ";" in name or "model_1/" in name else name


def budget_lines(model: Path, report, top: int = 12) -> list[str]:
    heads = set(T._head_layers(model))
    layers = sorted(report.layers, key=lambda r: r.index)
    first = next(r.name for r in layers if r.kind == "Conv")
    lines = []
    for out in report.outputs:
        noise = {r.name: 10 ** (-r.sensitivity_db[out] / 10) for r in layers
                 if r.sensitivity_db.get(out) is not None}
        total = sum(noise.values())
        ranked = sorted(noise, key=noise.get, reverse=True)
        norm = sum(v for n, v in noise.items() if n.startswith(M.NORMALIZATION_PREFIX))
        share = {k: sum(noise[n] for n in ranked[:k]) / total for k in (1, 5, 10, 20)}
        lines.append(
            f"  {out}: all quantized {report.output_snr_db[out]:.1f} dB, budget {-10 * np.log10(total):.1f} dB "
            f"over {len(noise)} layers; worst 1/5/10/20 layers "
            + "/".join(f"{100 * v:.0f}%" for v in share.values())
            + f"; heads {100 * sum(noise.get(n, 0) for n in heads) / total:.0f}%"
            + f"; first conv ({short(first)}) {100 * noise.get(first, 0) / total:.0f}%"
            + f"; input normalization {100 * norm / total:.0f}%")
        lines.append("    worst: " + ", ".join(
            f"{short(n)}{'*' if n in heads else ''} {-10 * np.log10(noise[n]):.1f}" for n in ranked[:top]))
    return lines


def portrait_snr(model: Path, extra_for: dict[str, str], root: Path):
    """({output: (pooled SNR, {portrait: SNR})}, [cycles per fold]) of the test's protocol, with script
    lines per fold."""
    power: dict[str, list[float]] = {}
    per: dict[str, dict[str, float]] = {}
    cycles = []
    for p in T.PORTRAITS:
        folder = root / f"{model.stem}_{p.name}_{abs(hash(extra_for[p.name])) % 10 ** 8}"
        calib = fold_calib(model, p, folder)
        result, binary = T._compile(model, calib, folder, extra_for[p.name])
        cycles.append(result.timing.total_cycles)
        for name, (s, n) in T._power(model, result, binary, T._eval_images(model, p)).items():
            acc = power.setdefault(name, [0.0, 0.0])
            acc[0] += s
            acc[1] += n
            per.setdefault(name, {})[p.name] = T._db(s, n)
    return {n: (T._db(*v), per[n]) for n, v in power.items()}, cycles


def fmt(snr) -> str:
    return "; ".join(f"{n}: {v:.1f} (" + "/".join(f"{x:.1f}" for x in per.values()) + ")"
                     for n, (v, per) in snr.items())


def main(argv: list[str]) -> None:
    mode, stems = argv[0], [a for a in argv[1:] if "=" not in a] or list(FAILING)
    for a in argv[1:]:  # coverage=0.8 headroom=1 heads=int8: variants of the rule (not what the test runs)
        if a.startswith("coverage="):
            M.COVERAGE = float(a.split("=")[1])
        elif a.startswith("headroom="):
            M.HEADROOM = float(a.split("=")[1])
        elif a == "heads=int8":
            M.FLOAT16_HEADS = False
    models = [m for m in T.MODELS if m.stem in stems]
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        for m in models:
            if mode == "sensitivity":
                for p in T.PORTRAITS:
                    t0 = time.perf_counter()
                    report, _ = sensitivity(m, p, root / f"{m.stem}_{p.name}_sens")
                    print(f"{m.stem}, fold evaluating {p.name} "
                          f"({T.CHOSEN.get((m.name, p.name), 'plain')}), {report.samples} calibration items, "
                          f"{time.perf_counter() - t0:.0f} s", flush=True)
                    print("\n".join(budget_lines(m, report)), flush=True)
            elif mode == "rule":  # blazeface_mixed's rule, as the test runs it
                t0 = time.perf_counter()
                power, per, ks, cycles = {}, {}, [], []
                for p in T.PORTRAITS:
                    result, binary, choice = T.compile_mixed_for(m, p, root / f"{m.stem}_{p.name}_rule")
                    ks.append(f"{len(choice.layers16)}/{choice.analysed}")
                    folder = root / f"{m.stem}_{p.name}_int8"
                    int8, _ = T._compile(m, fold_calib(m, p, folder), folder,
                                         T._recipe_text(m, T.CHOSEN.get((m.name, p.name), "plain")))
                    cycles.append(f"{int8.timing.total_cycles} -> {result.timing.total_cycles} "
                                  f"(x{result.timing.total_cycles / int8.timing.total_cycles:.2f})")
                    print(f"  {p.name} fold: a16 " + ", ".join(short(n) for n in choice.layers16), flush=True)
                    for name, (s_, n_) in T._power(m, result, binary, T._eval_images(m, p)).items():
                        acc = power.setdefault(name, [0.0, 0.0])
                        acc[0] += s_
                        acc[1] += n_
                        per.setdefault(name, {})[p.name] = T._db(s_, n_)
                snr = {n: (T._db(*v), per[n]) for n, v in power.items()}
                print(f"{m.stem}: {' + '.join(ks)} layers a16 (+ float16 heads), {time.perf_counter() - t0:.0f} s: "
                      f"{fmt(snr)}; cycles int8 -> mixed {' | '.join(cycles)}", flush=True)
            elif mode == "bounds":
                heads = "[" + ", ".join(f'"{n}"' for n in T._head_layers(m)) + "]"
                base = {p.name: T._recipe_text(m, T.CHOSEN.get((m.name, p.name), "plain")) for p in T.PORTRAITS}
                every = "quantization_param({*}, precision_mode=a16_w8)\n"
                fp16 = f"data_type({heads}, float16)\n"
                for label, line in (("int8", ""), ("a16_w8 everywhere", every),
                                    ("a16_w8 heads", f"quantization_param({heads}, precision_mode=a16_w8)\n"),
                                    ("float16 heads", fp16), ("a16_w8 everywhere, float16 heads", every + fp16)):
                    snr, cycles = portrait_snr(m, {k: v + line for k, v in base.items()}, root)
                    print(f"{m.stem} {label}: {fmt(snr)}; cycles " + " | ".join(map(str, cycles)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
