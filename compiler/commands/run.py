"""`npuc run`: run a compiled binary on the simulator N times, like an on-device benchmark tool.

Per run it prints the simulated NPU time (from the timing model: the target's
estimate for this binary) and the host time of the simulator; then load (read and
validate the binary), init (prepare the simulator), warmup (the first run, which
loads or compiles the numba kernels) and min / median / max / mean / stddev of
the host times. The input is `random` (seeded, in each input's dtype and range),
a .npy file, or an image preprocessed as the binary's metadata records.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from npuc.commands.common_args import add_target_args
from npuc.errors import NpucError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class _IntermixedParser(argparse.ArgumentParser):
    """Lets the optional positional INPUT follow options (`npuc run m.npub -r 5 random`).

    Plain argparse (before Python 3.13) binds both positionals as soon as it sees
    MODEL and then rejects a later INPUT; intermixed parsing handles options first.
    """

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a compiled binary on the bit-exact simulator and report timings",
        description="Run MODEL.npub on the simulator -r N times. Prints, per run, the simulated NPU time "
                    "(timing model) and the host time, then load / init / warmup / min / median / max / mean / "
                    "stddev. INPUT is 'random' (default), a .npy file, or an image (preprocessed as recorded in "
                    "the binary).")
    p.add_argument("model", type=Path, metavar="MODEL.npub", help="compiled binary")
    p.add_argument("input", nargs="?", default="random", metavar="random|INPUT.npy|IMAGE",
                   help="what to feed the (single) input: random, a .npy array or an image (default: random)")
    p.add_argument("-r", "--runs", type=int, default=1, metavar="N", help="number of timed runs (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument("--output-dir", type=Path, metavar="D", help="save the outputs as D/<name>.npy")
    p.add_argument("--raw", action="store_true", help="save integer codes instead of dequantized floats")
    add_target_args(p, None, "timing target (default: the one the binary was compiled for)")
    p.set_defaults(func=run)
    p.__class__ = _IntermixedParser  # the subparsers action created a plain ArgumentParser


def random_feed(entry, rng: np.random.Generator) -> np.ndarray:
    """A seeded random value in the input's dtype: integers over the type's range, floats in [-1, 1]."""
    dt = entry.dtype.numpy
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(int(info.min), int(info.max), size=entry.shape, endpoint=True).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, size=entry.shape).astype(bool)
    return rng.uniform(-1.0, 1.0, size=entry.shape).astype(dt)


def image_feed(path: Path, program, entry) -> np.ndarray:
    """An image preprocessed for `entry`: the binary's recorded preprocessing, else raw pixels with a warning."""
    from PIL import Image

    from npuc.calibration import Preprocessing
    from npuc.ir.graph import Graph

    probe = Graph("probe").add_input(entry.name, entry.dtype, entry.shape, layout=entry.layout)
    recorded = program.metadata.get("preprocessing")
    if isinstance(recorded, dict) and isinstance(recorded.get(entry.name, recorded), dict):
        fields = dict(recorded.get(entry.name, recorded))
        fields.pop("size", None)
        fields.pop("layout", None)
        pre = Preprocessing.for_input(probe, **fields)
    else:
        folded = program.metadata.get("graph_meta", {}).get("normalization", {})
        if entry.name not in folded:
            log.warning("the binary records no preprocessing for input '%s': feeding raw 0..255 pixels", entry.name)
        pre = Preprocessing.for_input(probe)
    try:
        with Image.open(path) as img:
            img.load()
            arr = pre.apply(img, str(path))
    except OSError as exc:
        raise NpucError(f"cannot read image '{path}': {exc}") from None
    return arr.astype(entry.dtype.numpy)


def make_feeds(spec: str, program, seed: int) -> dict[str, np.ndarray]:
    inputs = [program.tensors[i] for i in program.inputs]
    if spec == "random":
        rng = np.random.default_rng(seed)
        return {e.name: random_feed(e, rng) for e in inputs}
    path = Path(spec)
    if not path.is_file():
        raise NpucError(f"input '{spec}' is neither 'random' nor an existing file")
    if len(inputs) != 1:
        raise NpucError(f"the model has {len(inputs)} inputs; a file feeds only one — use 'random'")
    entry = inputs[0]
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise NpucError(f"cannot read '{path}': {exc}") from None
        if arr.shape != entry.shape:
            raise NpucError(f"'{path}' has shape {arr.shape}; input '{entry.name}' needs {entry.shape}")
        return {entry.name: arr.astype(entry.dtype.numpy)}
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return {entry.name: image_feed(path, program, entry)}
    raise NpucError(f"'{path}': unknown input kind (use .npy, an image, or 'random')")


def simulated_ms(program, target_name: str | None, target_paths) -> tuple[float, str]:
    """Latency of the binary on the target from the timing model, and the target's name."""
    from npuc.backends.npu.lower import to_graph
    from npuc.backends.npu.target import load_target
    from npuc.backends.npu.timing import estimate, layer_work_from_graph

    name = target_name or program.metadata.get("target") or "npu-s"
    target = load_target(str(name), target_paths)
    report = estimate(layer_work_from_graph(to_graph(program)), target)
    return report.latency_ms, target.name


def run(args: argparse.Namespace) -> int:
    from npuc.backends.npu.decode import read_binary
    from npuc.backends.npu.sim import Simulator

    if args.runs < 1:
        raise NpucError(f"-r/--runs must be at least 1, got {args.runs}")
    t0 = time.perf_counter()
    program = read_binary(args.model)
    load_ms = (time.perf_counter() - t0) * 1e3
    npu_ms, target = simulated_ms(program, args.target, args.target_path)
    t0 = time.perf_counter()
    sim = Simulator(program, str(args.model))
    init_ms = (time.perf_counter() - t0) * 1e3
    feeds = make_feeds(args.input, program, args.seed)
    t0 = time.perf_counter()
    outputs = sim.run(feeds)
    warmup_ms = (time.perf_counter() - t0) * 1e3
    print(f"model: {args.model} ({len(program.layers)} layers), target {target}, input {args.input}")
    host: list[float] = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        outputs = sim.run(feeds)
        host.append((time.perf_counter() - t0) * 1e3)
        print(f"run {i + 1:>3}: simulated NPU {npu_ms:9.3f} ms   host {host[-1]:9.3f} ms")
    print(f"load    {load_ms:9.3f} ms")
    print(f"init    {init_ms:9.3f} ms")
    print(f"warmup  {warmup_ms:9.3f} ms")
    print(f"min     {min(host):9.3f} ms")
    print(f"median  {statistics.median(host):9.3f} ms")
    print(f"max     {max(host):9.3f} ms")
    print(f"mean    {statistics.fmean(host):9.3f} ms")
    print(f"stddev  {statistics.pstdev(host):9.3f} ms")
    print(f"simulated NPU latency {npu_ms:.3f} ms ({1e3 / npu_ms if npu_ms > 0 else float('inf'):.1f} FPS) on {target}")
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        values = outputs if args.raw else sim.run(feeds, dequantize=True)
        for name, value in values.items():
            path = args.output_dir / (name.replace("/", "_") + ".npy")
            np.save(path, value, allow_pickle=False)
            print(f"saved {name} {value.dtype}{list(value.shape)} -> {path}")
    return 0
