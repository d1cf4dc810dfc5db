"""``mnist-bench predict`` and the preprocessing behind it, on real MNIST test digits written as image
files: PNG, an inverted PNG, an RGB JPEG of another size, 16-bit, GIF, BMP, RGBA; degenerate images
give an answer; hostile images are refused in bounded time and memory. The model that reads them is the
session's (``trained_model`` in conftest.py: FastNet trained once, ~97% on the test set); bad input is
in the inventory (tests/test_bad_inputs.py)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_models import data
from mnist_models.cli import main as cli
from mnist_models.config import RunConfig
from mnist_models.data import images
from mnist_models.data.images import ImageError, preprocess
from mnist_models.models import get_model
from mnist_models.train.checkpoint import save_checkpoint

from conftest import TRAINED_STEPS


@pytest.fixture(scope="module")
def digits(mnist_root: Path) -> list[tuple[int, np.ndarray]]:
    """The first test image of each class 0–9: (label, uint8 28×28 array)."""
    pictures, labels = data.load_split("test", mnist_root)
    first = {}
    for i, label in enumerate(labels.tolist()):
        first.setdefault(label, i)
        if len(first) == 10:
            break
    return [(label, pictures[first[label]].numpy()) for label in range(10)]


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid checkpoint of a fresh V0, for the checks that only need one to exist."""
    folder = tmp_path_factory.mktemp("untrained")
    return save_checkpoint(folder / "v0.pt", get_model("v0"), RunConfig(model="v0"), {})


def write(folder: Path, name: str, picture: Image.Image, **options) -> str:
    path = folder / name
    picture.save(path, **options)
    return str(path)


def on_paper(digit: np.ndarray, size: tuple[int, int] = (100, 80),
             box: tuple[int, int, int] = (25, 10, 60)) -> Image.Image:
    """The digit as dark-blue ink on cream paper, RGB, ``size`` (w, h), scaled to box[2] px at (box[0], box[1])."""
    ink = np.zeros((size[1], size[0]), dtype=np.float32)
    scaled = Image.fromarray(digit).resize((box[2], box[2]), Image.Resampling.BILINEAR)
    ink[box[1]:box[1] + box[2], box[0]:box[0] + box[2]] = np.asarray(scaled, dtype=np.float32) / 255
    paper, pen = np.array([235, 225, 200], dtype=np.float32), np.array([20, 30, 90], dtype=np.float32)
    rgb = paper * (1 - ink[..., None]) + pen * ink[..., None]
    return Image.fromarray(rgb.round().astype(np.uint8))


def predict(checkpoint: Path, files: list[str], capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    """``mnist-bench predict --json`` in process; its JSON object (the last stdout line)."""
    assert cli.main(["predict", "--checkpoint", str(checkpoint), *files, "--device", "cpu", "--json", *extra]) == 0
    result = json.loads(capsys.readouterr().out.rstrip("\n").splitlines()[-1])
    assert [p["file"] for p in result["predictions"]] == files
    for p in result["predictions"]:
        assert len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-4
        assert p["digit"] == int(np.argmax(p["probabilities"])) and p["probability"] == max(p["probabilities"])
    return result


def predicted(result: dict) -> list[int]:
    return [p["digit"] for p in result["predictions"]]


def count_right(result: dict, digits: list[tuple[int, np.ndarray]]) -> int:
    return sum(digit == label for digit, (label, _) in zip(predicted(result), digits, strict=True))


def assert_one_line_usage_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("mnist-bench: error: "), err
    for word in words:
        assert word in lines[0], lines[0]


# --------------------------------------------------------------------------------------------
# Preprocessing (no model)


def test_mnist_digits_come_back_as_they_were(mnist_root: Path) -> None:
    """MNIST's own digits are already normalised: preprocessing them changes almost nothing."""
    pictures, _ = data.load_split("test", mnist_root)
    samples = torch.stack([preprocess(Image.fromarray(p.numpy())) for p in pictures[:300]])
    assert samples.shape == (300, 1, 28, 28) and samples.dtype == torch.float32
    assert samples.min() >= 0 and samples.max() <= 1
    assert (samples.squeeze(1) - pictures[:300].float() / 255).abs().mean() < 0.005


def test_size_and_position_are_normalised(digits: list[tuple[int, np.ndarray]]) -> None:
    """A digit drawn small in a corner of a big image comes out the size and place of an MNIST digit."""
    _, digit = digits[3]
    reference = preprocess(Image.fromarray(digit))
    shifted = preprocess(on_paper(digit, size=(400, 300), box=(300, 200, 90)))
    assert (shifted - reference).abs().mean() < 0.05
    rows, cols = np.nonzero(shifted[0].numpy() > 0)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 20  # fits the 20×20 box
    mass = shifted[0].numpy()
    centre = (mass.sum(1) @ np.arange(28) / mass.sum(), mass.sum(0) @ np.arange(28) / mass.sum())
    assert all(abs(c - 14) <= 0.5 for c in centre)


def test_inversion_modes(digits: list[tuple[int, np.ndarray]]) -> None:
    _, digit = digits[7]
    normal, inverted = Image.fromarray(digit), Image.fromarray(255 - digit)
    assert torch.allclose(preprocess(inverted), preprocess(normal), atol=1e-6)  # auto: light border → invert
    assert torch.allclose(preprocess(inverted, invert="yes"), preprocess(normal), atol=1e-6)
    assert torch.allclose(preprocess(normal, invert="no"), preprocess(normal), atol=1e-6)
    assert not torch.allclose(preprocess(normal, invert="yes"), preprocess(normal), atol=0.1)
    with pytest.raises(ImageError):
        preprocess(normal, invert="maybe")


def test_every_mode_and_format_reads_the_same_digit(digits: list[tuple[int, np.ndarray]], tmp_path: Path) -> None:
    _, digit = digits[2]
    reference = preprocess(Image.fromarray(digit))
    wide = (digit.astype(np.uint16) * 257)
    alpha = np.zeros((28, 28, 4), dtype=np.uint8)
    alpha[..., 3] = digit  # black ink whose opacity is the digit, on a transparent background
    lossless = {
        "gray.bmp": (Image.fromarray(digit), {}),
        "palette.gif": (Image.fromarray(digit).convert("P"), {}),
        "sixteen.png": (Image.fromarray(wide), {}),
        "transparent.png": (Image.fromarray(alpha), {}),
        "gray-alpha.png": (Image.fromarray(digit).convert("LA"), {}),
        "rgb.png": (Image.fromarray(digit).convert("RGB"), {}),
    }
    for name, (picture, options) in lossless.items():
        sample = preprocess(write(tmp_path, name, picture, **options))
        assert (sample - reference).abs().max() < 0.02, name
    assert Image.open(tmp_path / "sixteen.png").mode.startswith("I")  # really read back as 16-bit
    bilevel = preprocess(write(tmp_path, "bilevel.png", Image.fromarray(digit).convert("1")))
    assert (bilevel - reference).abs().mean() < 0.1
    frames = [Image.fromarray(digit).convert("P"), Image.fromarray(255 - digit).convert("P")]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    assert (preprocess(tmp_path / "animated.gif") - reference).abs().max() < 0.02  # the first frame


@pytest.mark.parametrize("name,picture", [
    ("one-pixel-white.png", Image.new("L", (1, 1), 255)),
    ("one-pixel-black.png", Image.new("L", (1, 1), 0)),
    ("white.png", Image.new("L", (28, 28), 255)),
    ("white.jpg", Image.new("RGB", (500, 300), (255, 255, 255))),
    ("black.png", Image.new("L", (64, 64), 0)),
    ("gray16.png", Image.new("I;16", (40, 30), 30000)),
])
def test_blank_images_give_a_blank_sample(name: str, picture: Image.Image, tmp_path: Path) -> None:
    sample = preprocess(write(tmp_path, name, picture))
    assert sample.shape == (1, 28, 28) and not sample.any()


def test_bad_images_raise_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   digits: list[tuple[int, np.ndarray]]) -> None:
    good = write(tmp_path, "good.png", Image.fromarray(digits[0][1]))
    text = tmp_path / "text.png"
    text.write_text("not an image\n")
    cut = tmp_path / "cut.png"
    cut.write_bytes(Path(good).read_bytes()[:200])
    for path, words in ((tmp_path / "missing.png", "no such file"), (text, "not an image"),
                        (cut, "truncated or corrupted"), (tmp_path, "is a folder")):
        with pytest.raises(ImageError) as info:
            preprocess(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value) and words in str(info.value)
    monkeypatch.setattr(images, "MAX_PIXELS", 28 * 28 - 1)
    with pytest.raises(ImageError, match="over the limit"):
        preprocess(good)


# --------------------------------------------------------------------------------------------
# mnist-bench predict with a trained model


def test_ten_real_digits_from_png(trained_model: dict, digits: list[tuple[int, np.ndarray]], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, f"{label}.png", Image.fromarray(digit)) for label, digit in digits]
    result = predict(trained_model["path"], files, capsys)
    assert result["model"] == "fastnet" and result["checkpoint"] == str(trained_model["path"])
    right = count_right(result, digits)
    print(f"\n{right}/10 right; FastNet trained {TRAINED_STEPS} steps in {trained_model['train_s']:.1f} s, "
          f"{trained_model['metrics']['test_acc_pct']:.2f}% on the test set")
    assert right >= 9, (predicted(result), trained_model["metrics"])


def test_the_table_names_each_file(trained_model: dict, digits: list[tuple[int, np.ndarray]], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, f"digit-{label}.png", Image.fromarray(digit)) for label, digit in digits[:3]]
    assert cli.main(["predict", "--checkpoint", str(trained_model["path"]), *files]) == 0
    out = capsys.readouterr().out
    assert "fastnet" in out and all(Path(f).name in out for f in files)


def test_inverted_images_predict_the_same(trained_model: dict, digits: list[tuple[int, np.ndarray]], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    normal = [write(tmp_path, f"{label}.png", Image.fromarray(d)) for label, d in digits]
    inverted = [write(tmp_path, f"{label}-inverted.png", Image.fromarray(255 - d)) for label, d in digits]
    checkpoint = trained_model["path"]
    assert predicted(predict(checkpoint, inverted, capsys)) == predicted(predict(checkpoint, normal, capsys))


def test_rgb_jpeg_of_another_size(trained_model: dict, digits: list[tuple[int, np.ndarray]], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Dark ink on cream paper, the digit upscaled to 60×60 in a 100×80 RGB JPEG with a margin."""
    files = [write(tmp_path, f"{label}.jpg", on_paper(d), quality=90) for label, d in digits]
    assert Image.open(files[0]).mode == "RGB" and Image.open(files[0]).size == (100, 80)
    assert count_right(predict(trained_model["path"], files, capsys), digits) >= 9


def test_a_noisy_unevenly_lit_photo(trained_model: dict, digits: list[tuple[int, np.ndarray]], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Sensor noise (σ 8 levels) and light falling off across the page (±20 levels), JPEG quality 75."""
    rng = np.random.default_rng(0)
    files = []
    for label, digit in digits:
        page = np.asarray(on_paper(digit, size=(120, 100), box=(30, 20, 60)), dtype=np.float32)
        page += np.linspace(-20, 20, page.shape[1])[None, :, None] + rng.normal(0, 8, page.shape)
        files.append(write(tmp_path, f"{label}.jpg", Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)),
                           quality=75))
    assert count_right(predict(trained_model["path"], files, capsys), digits) >= 9


def test_16_bit_and_degenerate_images_get_an_answer(trained_model: dict, digits: list[tuple[int, np.ndarray]],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label, digit = digits[4]
    files = [write(tmp_path, "sixteen.png", Image.fromarray(digit.astype(np.uint16) * 257)),
             write(tmp_path, "one.png", Image.new("L", (1, 1), 128)),
             write(tmp_path, "white.png", Image.new("RGB", (64, 48), (255, 255, 255)))]
    result = predict(trained_model["path"], files, capsys, "--invert", "auto")
    assert predicted(result)[0] == label


# --------------------------------------------------------------------------------------------
# Bad input: one line, exit 2 (every bad file, flag and argument is a row of the inventory,
# tests/test_bad_inputs.py; what needs PIL itself changed is here)


def test_pils_own_decompression_bomb_guard_is_one_line_too(untrained: Path, digits: list[tuple[int, np.ndarray]],
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    good = write(tmp_path, "good.png", Image.fromarray(digits[0][1]))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL's guard, far below this image's 784 pixels
    code = cli.main(["predict", "--checkpoint", str(untrained), good])
    assert_one_line_usage_error(code, capsys.readouterr().err, "good.png", "decompression-bomb")


# --------------------------------------------------------------------------------------------
# Hostile inputs (issue 11): a prediction, or one line and exit 2, in bounded memory and time


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` 8-bit gray pixels, about 1 KiB on disk: its data
    is 1 MiB of zeros, compressed (a decompression bomb's shape: decoding it would need width × height
    bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # depth 8, grayscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1 << 20), 9))
            + chunk(b"IEND", b""))


# Runs `mnist-bench predict` on the bomb in a fresh process, once per PIL guard setting given (argv:
# checkpoint, image, then "on"/"off" each), and reports what each call cost: how far the process's peak RSS
# rose above its RSS before the call (the peak, VmHWM, is reset first through /proc/self/clear_refs, so
# that the imports' or an earlier call's peak cannot hide a rise; where that is refused, ru_maxrss's
# growth), the call's wall time, and what it printed on stderr.
BOMB_PROBE = """
import contextlib, io, json, resource, sys, time
from PIL import Image
from mnist_models.cli.main import main
import mnist_models.cli.actions.predict  # its imports (torch) before the measured calls, not inside them

def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

guard, costs = Image.MAX_IMAGE_PIXELS, []
for setting in sys.argv[3:]:
    Image.MAX_IMAGE_PIXELS = guard if setting == "on" else None  # off: mnist-bench's guard must hold alone
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS to the current RSS
        reset = True
    except OSError:
        reset = False
    rss, maxrss = status_kib("VmRSS"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err, start = io.StringIO(), time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main(["predict", "--checkpoint", sys.argv[1], sys.argv[2], "--device", "cpu"])
    seconds = time.perf_counter() - start
    growth = status_kib("VmHWM") - rss if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss
    costs.append({"pil_guard": setting, "code": code, "seconds": seconds, "rss_growth_kib": growth,
                  "peak_reset": reset, "stderr": err.getvalue()})
print(json.dumps(costs))
"""


def bomb_costs(checkpoint: Path, bomb: Path, settings: list[str]) -> dict[str, dict]:
    done = subprocess.run([sys.executable, "-c", BOMB_PROBE, str(checkpoint), str(bomb), *settings],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return {cost["pil_guard"]: cost for cost in json.loads(done.stdout.strip().splitlines()[-1])}


@pytest.fixture(scope="module")
def bomb_refusals(untrained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """What refusing the bomb cost with PIL's guard on and off: both in one fresh process, each call's
    peak measured from its own start; one process each where the peak cannot be reset (an earlier
    call's peak would hide a later one's rise)."""
    bomb = tmp_path_factory.mktemp("bomb") / "bomb.png"
    bomb.write_bytes(png_declaring(50_000, 50_000))
    assert bomb.stat().st_size < 4096 and struct.unpack(">II", bomb.read_bytes()[16:24]) == (50_000, 50_000)
    costs = bomb_costs(untrained, bomb, ["on", "off"])
    if not all(cost["peak_reset"] for cost in costs.values()):
        costs = {setting: bomb_costs(untrained, bomb, [setting])[setting] for setting in ("on", "off")}
    return costs


@pytest.mark.parametrize("pil_guard", ["on", "off"])
def test_a_png_declaring_50000_by_50000_pixels_is_refused_from_its_header(pil_guard: str,
                                                                          bomb_refusals: dict[str, dict]) -> None:
    cost = bomb_refusals[pil_guard]
    assert_one_line_usage_error(cost["code"], cost["stderr"], "bomb.png", "pixels", "fix:")
    print(f"\nPIL's guard {pil_guard}: refused in {cost['seconds'] * 1e3:.1f} ms, peak RSS "
          f"{cost['rss_growth_kib'] / 1024:.1f} MiB above the RSS before the call (peak reset: "
          f"{cost['peak_reset']}); {cost['stderr'].strip()}")
    # Decoding would take 2.5 GB (50,000² bytes): refused from the header, it takes next to nothing.
    assert cost["seconds"] < 5 and cost["rss_growth_kib"] < 32 * 1024


def test_hostile_images_get_a_prediction_or_one_line(trained_model: dict, digits: list[tuple[int, np.ndarray]],
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label, digit = digits[6]
    first = write(tmp_path, "first-frame.png", Image.fromarray(digit))
    frames = [Image.fromarray(digit).convert("P"), Image.fromarray(digits[1][1]).convert("P")]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(tmp_path / "animated.gif").n_frames == 2
    answered = {"animated.gif": False, "one-white.png": True, "one-black.png": True, "white.png": True,
                "white.jpg": True, "sixteen.png": False}
    Image.new("L", (1, 1), 255).save(tmp_path / "one-white.png")
    Image.new("L", (1, 1), 0).save(tmp_path / "one-black.png")
    Image.new("L", (28, 28), 255).save(tmp_path / "white.png")
    Image.new("RGB", (500, 300), (255, 255, 255)).save(tmp_path / "white.jpg")
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    start = time.perf_counter()
    result = predict(trained_model["path"], [first, *(str(tmp_path / name) for name in answered)], capsys)
    assert time.perf_counter() - start < 30
    by_file = {Path(p["file"]).name: p for p in result["predictions"]}
    assert by_file["animated.gif"]["probabilities"] == pytest.approx(by_file["first-frame.png"]["probabilities"])
    assert by_file["first-frame.png"]["digit"] == label == by_file["sixteen.png"]["digit"]  # the first frame read
    assert {name: by_file[name]["blank"] for name in answered} == answered  # blank: said so, not a crash
    assert cli.main(["predict", "--checkpoint", str(trained_model["path"]), str(tmp_path / "white.png")]) == 0
    assert "no digit found" in capsys.readouterr().out  # the table says so too

    jpeg = tmp_path / "photo.jpg"
    on_paper(digit).save(jpeg, quality=90)
    refused = {"half.jpg": (jpeg.read_bytes()[: jpeg.stat().st_size // 2], "truncated"),
               "header.jpg": (jpeg.read_bytes()[:300], "JPEG file truncated"),
               "text.png": (b"just some text\n", "not an image"),
               "empty.png": (b"", "not an image"),
               "bomb.png": (png_declaring(50_000, 50_000), "pixels")}
    for name, (content, words) in refused.items():
        (tmp_path / name).write_bytes(content)
        start = time.perf_counter()
        code = cli.main(["predict", "--checkpoint", str(trained_model["path"]), str(tmp_path / name)])
        assert_one_line_usage_error(code, capsys.readouterr().err, name, words)
        assert time.perf_counter() - start < 5, name
