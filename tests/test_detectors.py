"""Training-free detectors (ela, noise, dq, ghost, grid): the contract, and a case each must find or leave alone.

Each "find" case is generated from a scikit-image photograph with a known tampered region; each "leave alone"
case is an untouched photograph, single-compressed where the method reads JPEG traces.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from helpers.detectors import Prediction, get_detector, list_detectors
from helpers.detectors.decision import robust_z, split_outliers
from helpers.forensics.blocks import (
    ZIGZAG,
    block_dct,
    block_means,
    blocks_to_pixels,
    channel_mean,
    estimate_jpeg_grid,
    estimate_quantisation_steps,
    luminance,
    tile_blocks,
)
from helpers.forensics.dq import histogram_period
from helpers.forensics.jpeg import scaled_table
from helpers.imageio import LoadedImage, decode_image, encode_jpeg, jpeg_roundtrip, load_image, save_jpeg, save_png

METHODS = ("dq", "ela", "ghost", "grid", "noise")


def _box(shape: tuple[int, ...], top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    mask[top:top + height, left:left + width] = True
    return mask


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(predicted & truth) / (np.count_nonzero(predicted) + np.count_nonzero(truth))


def _assert_found(prediction: Prediction, truth: np.ndarray, min_f1: float = 0.5) -> None:
    inside = float(prediction.heatmap[truth].mean())
    outside = float(prediction.heatmap[~truth].mean())
    assert inside > outside + 0.4, (inside, outside)
    assert _f1(prediction.mask, truth) >= min_f1, _f1(prediction.mask, truth)
    assert prediction.score is not None and prediction.score > 0.5


def _assert_left_alone(prediction: Prediction) -> None:
    assert prediction.mask.mean() <= 0.01, prediction.mask.mean()
    assert prediction.score is not None and prediction.score <= 0.1


# ----------------------------------------------------------------------------------------------------------------
# The contract: every registered training-free detector, on a JPEG file, a PNG file and a bare array


def test_the_training_free_methods_are_registered() -> None:
    names = set(list_detectors(trained=False))
    assert set(METHODS) <= names
    assert not set(METHODS) & set(list_detectors(trained=True))


@pytest.fixture(scope="module")
def contract_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedImage]:
    folder = tmp_path_factory.mktemp("contract")
    photo = data.astronaut()
    odd = np.ascontiguousarray(photo[37:37 + 101, 50:50 + 77])  # 101x77: no side a multiple of 8
    tiny = np.ascontiguousarray(photo[200:220, 200:220])
    return {
        "jpeg 101x77": load_image(save_jpeg(folder / "odd.jpg", odd, 85)),
        "png 101x77": load_image(save_png(folder / "odd.png", jpeg_roundtrip(odd, 80))),
        "array 101x77": LoadedImage(odd),
        "jpeg 20x20": load_image(save_jpeg(folder / "tiny.jpg", tiny, 85)),
        "png 20x20": load_image(save_png(folder / "tiny.png", tiny)),
        "array 20x20": LoadedImage(tiny),
        "array 3x5": LoadedImage(np.ascontiguousarray(photo[:3, :5])),
        "array 64x160": LoadedImage(np.ascontiguousarray(jpeg_roundtrip(photo, 75)[:64, :160])),
    }


@pytest.mark.parametrize("name", list_detectors(trained=False))
def test_every_detector_returns_a_valid_prediction_of_the_image_size(
    name: str, contract_inputs: dict[str, LoadedImage]
) -> None:
    detector = get_detector(name)
    for label, image in contract_inputs.items():
        prediction = detector(image)
        assert isinstance(prediction, Prediction), label
        assert prediction.heatmap.shape == image.shape, label
        assert prediction.heatmap.dtype == np.float32, label
        assert np.isfinite(prediction.heatmap).all(), label
        assert 0.0 <= float(prediction.heatmap.min()) and float(prediction.heatmap.max()) <= 1.0, label
        assert prediction.mask.shape == image.shape and prediction.mask.dtype == bool, label
        assert prediction.score is None or 0.0 <= prediction.score <= 1.0, label


def test_detectors_accept_paths_and_arrays(tmp_path: Path) -> None:
    photo = np.ascontiguousarray(data.chelsea()[:96, :128])
    path = save_jpeg(tmp_path / "photo.jpg", photo, 90)
    for name in METHODS:
        detector = get_detector(name)
        assert detector(str(path)).heatmap.shape == (96, 128)
        assert detector(photo).heatmap.shape == (96, 128)


def test_a_detector_runs_once_per_image_and_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    # The per-image memo: a fusion evaluated beside the detectors it reads gets their maps without rerunning them.
    from helpers.detectors.ela import ELADetector

    calls: list[int] = []
    original = ELADetector.predict

    def counting(self, image):  # noqa: ANN001, ANN202
        calls.append(id(image))
        return original(self, image)

    monkeypatch.setattr(ELADetector, "predict", counting)
    image = LoadedImage(data.astronaut()[:96, :128])
    get_detector("ela")(image)
    get_detector("ela")(image)
    assert len(calls) == 2  # off by default: the maps would stay as long as the image
    calls.clear()
    image.predictions = {}  # as evaluate does for each image
    first = get_detector("ela")(image)
    reference = first.heatmap.copy()
    first.heatmap[:] = 0.5  # a caller editing its copy in place changes nothing for the next one
    again = get_detector("ela")(image)
    assert len(calls) == 1
    np.testing.assert_array_equal(again.heatmap, reference)
    get_detector("ela", quality=75)(image)  # other parameters: computed
    other = LoadedImage(data.astronaut()[:96, :128])
    other.predictions = {}
    get_detector("ela")(other)  # another image: computed
    assert len(calls) == 3


def test_learned_detectors_are_not_remembered() -> None:
    from helpers.detectors.base import Detector, detector_identity

    class Changing(Detector):
        trained = True

        def __init__(self) -> None:
            self.level = 0.0

        def predict(self, image):  # noqa: ANN001, ANN202
            return Prediction.from_heatmap(np.full(image.shape, self.level, np.float32))

    detector, image = Changing(), LoadedImage(np.zeros((32, 32, 3), np.uint8))
    image.predictions = {}
    assert detector_identity(detector) is None
    detector(image)
    detector.level = 1.0  # a model that trained between two calls gives its new answer
    assert detector(image).heatmap.min() == 1.0


def test_bad_parameters_are_refused() -> None:
    for name, params in [("dq", {"smooth": 4}), ("dq", {"max_frequency": 0}), ("ela", {"quality": 0}),
                         ("noise", {"block": 7}), ("ghost", {"qualities": (90,)}), ("grid", {"cell": 12})]:
        with pytest.raises(ValueError):
            get_detector(name, **params)


# ----------------------------------------------------------------------------------------------------------------
# dq: a JPEG at q=70 re-saved at q=90 with a region pasted from an uncompressed photo


def _double_compressed_with_paste(photo: np.ndarray, donor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    base = decode_image(encode_jpeg(photo, 70)).copy()
    height, width = base.shape[:2]
    truth = _box(base.shape, height // 3 + 3, width // 3 + 5, height // 3, width // 3)
    base[truth] = donor[: height, : width][truth]
    return base, truth


@pytest.mark.parametrize("photo_name", ["astronaut", "coffee", "chelsea"])
def test_dq_finds_a_singly_compressed_paste_in_a_jpeg_and_in_its_png(photo_name: str, tmp_path: Path) -> None:
    photo = getattr(data, photo_name)()
    donor = cv2.resize(data.rocket(), (photo.shape[1], photo.shape[0]))
    tampered, truth = _double_compressed_with_paste(photo, donor)
    jpeg = save_jpeg(tmp_path / "tampered.jpg", tampered, 90)
    detector = get_detector("dq")
    _assert_found(detector(load_image(jpeg)), truth, min_f1=0.6)
    # The same pixels as a lossless PNG: coefficients from the detected grid and the estimated steps, which are
    # noisier (rounding of the decoded pixels), so smooth areas add some false positives.
    png = save_png(tmp_path / "tampered.png", decode_image(jpeg.read_bytes()))
    _assert_found(detector(load_image(png)), truth, min_f1=0.45)


@pytest.mark.parametrize("photo_name", ["astronaut", "coffee", "chelsea"])
def test_dq_leaves_single_compressed_and_uncompressed_photos_alone(photo_name: str, tmp_path: Path) -> None:
    photo = getattr(data, photo_name)()
    jpeg = save_jpeg(tmp_path / "single.jpg", photo, 90)
    detector = get_detector("dq")
    _assert_left_alone(detector(load_image(jpeg)))
    _assert_left_alone(detector(load_image(save_png(tmp_path / "single.png", decode_image(jpeg.read_bytes())))))
    never = detector(LoadedImage(photo))
    _assert_left_alone(never)
    assert float(never.heatmap.max()) == 0.0  # no lattice, no double quantisation: nothing to say


def test_dq_evidence_lies_on_the_grid_of_a_cropped_png(tmp_path: Path) -> None:
    photo = data.astronaut()
    tampered, truth = _double_compressed_with_paste(photo, cv2.resize(data.rocket(), (512, 512)))
    decoded = decode_image(encode_jpeg(tampered, 90))
    png = save_png(tmp_path / "cropped.png", np.ascontiguousarray(decoded[3:, 5:]))
    detector = get_detector("dq")
    evidence, offset = detector.evidence(load_image(png))
    assert offset == (5, 3)
    assert evidence.found
    _assert_found(detector(load_image(png)), truth[3:, 5:], min_f1=0.45)


# ----------------------------------------------------------------------------------------------------------------
# ela: an uncompressed region in a photo saved at the ELA quality


@pytest.mark.parametrize("photo_name", ["astronaut", "coffee"])
def test_ela_finds_a_region_with_another_compression_history(photo_name: str) -> None:
    photo = getattr(data, photo_name)()
    height, width = photo.shape[:2]
    truth = _box(photo.shape, height // 4, width // 4, height // 3, width // 3)
    tampered = jpeg_roundtrip(photo, 90).copy()
    tampered[truth] = photo[truth]  # the original, never-compressed pixels
    _assert_found(get_detector("ela")(LoadedImage(tampered)), truth)


@pytest.mark.parametrize("photo_name", ["astronaut", "coffee", "chelsea"])
def test_ela_leaves_a_single_compressed_photo_alone(photo_name: str) -> None:
    photo = getattr(data, photo_name)()
    _assert_left_alone(get_detector("ela")(LoadedImage(jpeg_roundtrip(photo, 90))))


def test_ela_does_not_flag_texture() -> None:
    # Half the image flat, half strong texture, one compression history: raw error follows the texture, the
    # normalised map must not.
    rng = np.random.default_rng(0)
    image = np.full((256, 256, 3), 120, np.uint8)
    image[:, 128:] = rng.integers(0, 256, (256, 128, 3), dtype=np.uint8)
    prediction = get_detector("ela")(LoadedImage(jpeg_roundtrip(image, 90)))
    assert prediction.mask.mean() <= 0.01


# ----------------------------------------------------------------------------------------------------------------
# noise: a region with added Gaussian noise


@pytest.mark.parametrize(("photo_name", "sigma"), [("astronaut", 25.0), ("rocket", 10.0)])
def test_noise_finds_a_region_with_added_noise(photo_name: str, sigma: float) -> None:
    photo = getattr(data, photo_name)()
    height, width = photo.shape[:2]
    truth = _box(photo.shape, height // 2, width // 2, height // 3, width // 3)
    noisy = photo.astype(np.float32)
    noisy[truth] += np.random.default_rng(0).normal(0.0, sigma, (int(truth.sum()), 3)).astype(np.float32)
    tampered = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    _assert_found(get_detector("noise")(LoadedImage(tampered)), truth)


@pytest.mark.parametrize("photo_name", ["astronaut", "rocket", "coffee"])
def test_noise_leaves_an_untouched_photo_alone(photo_name: str) -> None:
    _assert_left_alone(get_detector("noise")(LoadedImage(getattr(data, photo_name)())))


# ----------------------------------------------------------------------------------------------------------------
# ghost: a region once saved at quality 60 in a photo saved at 90


@pytest.mark.parametrize("photo_name", ["astronaut", "coffee", "chelsea"])
def test_ghost_finds_a_region_once_saved_at_a_lower_quality(photo_name: str, tmp_path: Path) -> None:
    photo = getattr(data, photo_name)()
    height, width = photo.shape[:2]
    truth = _box(photo.shape, (height // 4) // 8 * 8, (width // 4) // 8 * 8, height // 3, width // 3)
    composite = photo.copy()
    composite[truth] = jpeg_roundtrip(photo, 60)[truth]
    path = save_jpeg(tmp_path / "ghost.jpg", composite, 90)
    detector = get_detector("ghost")
    image = load_image(path)
    assert detector.dominant_quality(image, np.zeros((10, 1, 1))) == 90  # from the file's tables
    _assert_found(detector(image), truth)


@pytest.mark.parametrize("photo_name", ["astronaut", "coffee", "chelsea"])
def test_ghost_leaves_a_single_compressed_photo_alone(photo_name: str, tmp_path: Path) -> None:
    photo = getattr(data, photo_name)()
    _assert_left_alone(get_detector("ghost")(load_image(save_jpeg(tmp_path / "single.jpg", photo, 90))))


# ----------------------------------------------------------------------------------------------------------------
# grid: a region pasted with a 3-pixel grid shift


@pytest.mark.parametrize("photo_name", ["astronaut", "chelsea"])
def test_grid_finds_a_region_whose_grid_is_shifted(photo_name: str) -> None:
    photo = getattr(data, photo_name)()
    height, width = photo.shape[:2]
    truth = _box(photo.shape, height // 4, width // 4, height // 3, width // 3)
    compressed = jpeg_roundtrip(photo, 75)
    tampered = compressed.copy()
    tampered[truth] = np.roll(compressed, (3, 3), axis=(0, 1))[truth]  # the same JPEG, moved by 3 pixels
    _assert_found(get_detector("grid")(LoadedImage(tampered)), truth)


@pytest.mark.parametrize(("photo_name", "quality"), [("astronaut", 75), ("chelsea", 75), ("astronaut", 90)])
def test_grid_leaves_a_single_compressed_photo_alone(photo_name: str, quality: int) -> None:
    photo = getattr(data, photo_name)()
    _assert_left_alone(get_detector("grid")(LoadedImage(jpeg_roundtrip(photo, quality))))


def test_grid_has_nothing_to_say_about_a_never_compressed_image() -> None:
    prediction = get_detector("grid")(LoadedImage(data.chelsea()))
    assert float(prediction.heatmap.max()) == 0.0 and not prediction.mask.any() and prediction.score == 0.0


# ----------------------------------------------------------------------------------------------------------------
# The traces underneath


def test_block_dct_matches_opencv_on_every_block() -> None:
    y = luminance(data.astronaut()[:64, :48])
    coefficients = block_dct(y, (3, 5))
    assert coefficients.shape == ((64 - 3) // 8, (48 - 5) // 8, 8, 8)
    block = y[3 + 8:3 + 16, 5 + 16:5 + 24].astype(np.float64) - 128.0
    np.testing.assert_allclose(coefficients[1, 2], cv2.dct(block), atol=1e-3)
    assert block_dct(y[:7, :7]).shape == (0, 0, 8, 8)


def test_jpeg_grid_is_found_after_a_crop_and_not_in_noise() -> None:
    decoded = jpeg_roundtrip(data.coffee(), 90)
    grid = estimate_jpeg_grid(luminance(decoded[3:, 5:]))
    assert grid.found and grid.offset == (5, 3)
    noise = np.random.default_rng(0).normal(128.0, 20.0, (300, 300)).astype(np.float32)
    assert not estimate_jpeg_grid(noise).found


def test_quantisation_steps_are_recovered_from_decoded_pixels() -> None:
    decoded = jpeg_roundtrip(data.astronaut(), 75)
    coefficients = block_dct(luminance(decoded))
    modes = ZIGZAG[1:15]
    steps = estimate_quantisation_steps(coefficients, modes)
    table = scaled_table(75).reshape(8, 8)
    for u, v in modes:
        assert steps[u, v] == table[u, v], (u, v, steps[u, v], table[u, v])
    never = estimate_quantisation_steps(block_dct(luminance(data.astronaut())), modes)
    assert not never.any()  # no lattice at all in never-compressed pixels


def test_histogram_period_sees_double_quantisation_only() -> None:
    rng = np.random.default_rng(0)
    values = rng.laplace(0.0, 20.0, 20000)
    double = np.rint(np.rint(values / 7) * 7 / 4).astype(np.int64)
    single = np.rint(values / 4).astype(np.int64)
    assert histogram_period(np.bincount(double - double.min())) > 1
    assert histogram_period(np.bincount(single - single.min())) == 1


def test_split_outliers_finds_a_separate_mode_and_nothing_in_one_mode() -> None:
    rng = np.random.default_rng(0)
    bulk = rng.normal(size=2000)
    for side, shift in (("high", 6.0), ("both", -6.0)):
        values = np.concatenate([bulk, rng.normal(shift, 1.0, 200)])
        split = split_outliers(robust_z(values), side=side)
        assert split.accepted
        assert split.mask[2000:].mean() > 0.95 and split.mask[:2000].mean() < 0.01
    assert not split_outliers(robust_z(np.concatenate([bulk, rng.normal(-6.0, 1.0, 200)])), side="high").accepted
    assert not split_outliers(bulk).accepted
    assert not split_outliers(robust_z(rng.standard_t(3, 2000))).accepted  # a heavy tail is not a second mode
    assert not robust_z(np.full(10, 3.0)).any()


def test_block_maps_round_trip_to_pixels() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    pixels = blocks_to_pixels(values, (21, 30), block=8, offset=(2, 3))
    assert pixels.shape == (21, 30)
    assert pixels[0, 0] == 0 and pixels[2 + 8, 3 + 8] == 4 and pixels[20, 29] == 5
    tiles = tile_blocks(np.arange(16 * 24).reshape(16, 24), 8)
    assert tiles.shape == (2, 3, 64) and tiles[1, 2, 0] == 8 * 24 + 16


def test_block_and_channel_means_match_the_plain_reductions() -> None:
    values = np.random.default_rng(3).random((37, 50), dtype=np.float32) * 255
    np.testing.assert_allclose(block_means(values, 8), tile_blocks(values, 8).mean(axis=2), rtol=1e-5)
    assert block_means(values, 8).shape == (4, 6) and block_means(values, 64).shape == (0, 0)
    assert block_means(np.ones((16, 16)), 8).dtype == np.float32
    rgb = np.random.default_rng(4).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_allclose(channel_mean(rgb), rgb.astype(np.float32).mean(axis=2), rtol=1e-6)
    with pytest.raises(ValueError, match="expected a \\(H, W\\) map"):
        block_means(rgb, 8)
    with pytest.raises(ValueError, match="expected an \\(H, W, C\\) array"):
        channel_mean(values)
