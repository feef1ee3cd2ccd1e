"""`npuc emulate`: the three emulation modes on the bundled example take the same raw input."""
from pathlib import Path

import numpy as np

from npuc.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ppocr_cls"


def emulate(mode: str, x: Path, out: Path) -> np.ndarray:
    code = main(["emulate", str(EXAMPLE / "model.onnx"), "-s", str(EXAMPLE / "model.alls"),
                 "--calib", str(EXAMPLE / "calib" / "*.png"), "--mode", mode, "--input", str(x), "-o", str(out)])
    assert code == 0
    with np.load(out) as data:
        return next(iter(data.values()))


def test_modes_agree(tmp_path):
    from PIL import Image

    img = Image.open(EXAMPLE / "calib" / "line_00003.png").convert("RGB").resize((192, 48))
    x = np.asarray(img, np.float32).transpose(2, 0, 1)[None]
    np.save(tmp_path / "x.npy", x)
    native = emulate("native", tmp_path / "x.npy", tmp_path / "n.npz")
    fp = emulate("fp_optimized", tmp_path / "x.npy", tmp_path / "f.npz")
    quant = emulate("quantized", tmp_path / "x.npy", tmp_path / "q.npz")
    np.testing.assert_allclose(fp, native, atol=1e-5)
    snr = 10 * np.log10(np.sum(native**2) / max(np.sum((quant - native) ** 2), 1e-30))
    assert snr > 20, snr
    assert np.argmax(quant) == np.argmax(native)


def test_missing_input_is_a_clear_error(capsys):
    code = main(["emulate", str(EXAMPLE / "model.onnx"), "-s", str(EXAMPLE / "model.alls"), "--mode", "native"])
    err = capsys.readouterr().err
    assert code == 2 and "--input" in err and "Traceback" not in err
