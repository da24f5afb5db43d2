"""Tests for dreamdance.media: image modes, error messages, video round trips, resize and K."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from dreamdance import media
from dreamdance.camera import scale_intrinsics
from dreamdance.errors import InputError

# --------------------------------------------------------------------------------------------
# helpers


def png16(a: np.ndarray, colour_type: int, exif: bytes | None = None) -> bytes:
    """A minimal 16-bit PNG (no filtering), optionally with an eXIf chunk before the pixels."""
    h, w = a.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + a[i].astype(">u2").tobytes() for i in range(h))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
    if exif is not None:
        body += chunk(b"eXIf", exif)
    body += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def exif_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def smooth_frames(t: int, h: int, w: int) -> np.ndarray:
    """[T, H, W, 3] uint8 gentle gradients that drift over time (easy for H.264)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = [
        np.stack(
            [0.3 + 0.3 * xx / w, 0.3 + 0.3 * yy / h, np.full((h, w), 0.2 + 0.6 * i / t)], axis=-1
        )
        for i in range(t)
    ]
    return media.to_uint8(np.stack(frames))


def project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points: X [..., 3] -> pixel coordinates [..., 2]."""
    x = X @ K.T
    return x[..., :2] / x[..., 2:]


def centroid(mask: np.ndarray) -> np.ndarray:
    """Weighted centre of a [H, W] image in continuous coordinates (pixel centres at +0.5)."""
    ii, jj = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    w = mask.astype(np.float64)
    return np.array([((jj + 0.5) * w).sum() / w.sum(), ((ii + 0.5) * w).sum() / w.sum()])


K0 = np.array([[500.0, 2.0, 310.3], [0.0, 480.0, 240.7], [0.0, 0.0, 1.0]])
X0 = np.array([[0.3, -0.2, 2.5], [-1.0, 0.7, 4.0]])


# --------------------------------------------------------------------------------------------
# load_image: modes


def test_rgb_red_pixel(tmp_path):
    a = np.zeros((2, 3, 3), np.uint8)
    a[1, 2] = (255, 0, 0)
    a[0, 0] = (0, 128, 255)
    Image.fromarray(a).save(tmp_path / "x.png")
    img = media.load_image(tmp_path / "x.png")
    assert img.rgb.shape == (2, 3, 3) and img.rgb.dtype == np.float32
    assert img.alpha is None
    np.testing.assert_array_equal(img.rgb[1, 2], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(img.rgb[0, 0], [0.0, 128 / 255, 1.0], rtol=0, atol=1e-7)


def test_rgba_alpha_and_opaque_alpha_kept(tmp_path):
    a = np.zeros((1, 3, 4), np.uint8)
    a[0, :, 0] = 200
    a[0, :, 3] = (0, 128, 255)
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    img = media.load_image(tmp_path / "a.png")
    assert img.alpha.shape == (1, 3) and img.alpha.dtype == np.float32
    np.testing.assert_allclose(img.alpha[0], [0.0, 128 / 255, 1.0], atol=1e-7)
    np.testing.assert_allclose(img.rgb[0, :, 0], 200 / 255, atol=1e-7)

    a[0, :, 3] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "opaque.png")
    opaque = media.load_image(tmp_path / "opaque.png")
    assert opaque.alpha is not None
    np.testing.assert_array_equal(opaque.alpha, 1.0)


def test_grey_L(tmp_path):
    Image.fromarray(np.array([[0, 128, 255]], np.uint8), "L").save(tmp_path / "g.png")
    img = media.load_image(tmp_path / "g.png")
    assert img.rgb.shape == (1, 3, 3) and img.alpha is None
    np.testing.assert_allclose(img.rgb[0, 1], [0.50196078] * 3, atol=1e-7)
    np.testing.assert_array_equal(img.rgb[0, 2], [1.0, 1.0, 1.0])


def test_grey_LA(tmp_path):
    la = Image.merge("LA", [Image.new("L", (2, 1), 100), Image.new("L", (2, 1), 51)])
    la.save(tmp_path / "la.png")
    img = media.load_image(tmp_path / "la.png")
    np.testing.assert_allclose(img.rgb, 100 / 255, atol=1e-7)
    np.testing.assert_allclose(img.alpha, [[0.2, 0.2]], atol=1e-7)


def _palette_image() -> Image.Image:
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    for x in range(3):
        p.putpixel((x, 0), x)
    return p


def test_palette_without_transparency(tmp_path):
    _palette_image().save(tmp_path / "p.png")
    img = media.load_image(tmp_path / "p.png")
    assert img.alpha is None
    np.testing.assert_array_equal(img.rgb[0], np.eye(3))


def test_palette_transparency_entry_becomes_alpha(tmp_path):
    _palette_image().save(tmp_path / "p.png", transparency=1)
    img = media.load_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img.alpha, [[1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(img.rgb[0, 2], [0.0, 0.0, 1.0])


def test_one_bit(tmp_path):
    b = Image.new("1", (2, 1))
    b.putpixel((1, 0), 1)
    b.save(tmp_path / "b.png")
    img = media.load_image(tmp_path / "b.png")
    np.testing.assert_array_equal(img.rgb[0], [[0, 0, 0], [1, 1, 1]])
    assert img.alpha is None


def test_cmyk(tmp_path):
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.tif")
    img = media.load_image(tmp_path / "c.tif")
    assert img.rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(img.rgb[1, 1], [1.0, 0.0, 0.0])


def test_grey_16bit_png(tmp_path):
    a = np.array([[0, 32768, 65535]], np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    img = media.load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img.rgb[0, 2], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(img.rgb[0, 1], [0.50000763] * 3, rtol=1e-6)


def test_int32_mode_I(tmp_path):
    Image.fromarray(np.array([[0, 1, 65535]], np.int32)).save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    img = media.load_image(tmp_path / "i.tif")
    np.testing.assert_allclose(img.rgb[0, :, 0], [0.0, 1 / 65535, 1.0], rtol=1e-6)

    Image.fromarray(np.array([[0, 70000]], np.int32)).save(tmp_path / "big.tif")
    with pytest.raises(InputError, match=r"0\.\.70000"):
        media.load_image(tmp_path / "big.tif")


def test_float_mode_F(tmp_path):
    Image.fromarray(np.array([[0.25, 1.0]], np.float32)).save(tmp_path / "f.tif")
    img = media.load_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(img.rgb[0, :, 1], [0.25, 1.0])

    Image.fromarray(np.array([[0.0, 3.5]], np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(InputError, match=r"expected \[0, 1\]"):
        media.load_image(tmp_path / "hdr.tif", name="image=hdr.tif")


def test_rgb_16bit_png_keeps_full_precision(tmp_path):
    bgr = np.zeros((1, 2, 3), np.uint16)
    bgr[0, 0] = (65535, 32768, 1)  # B, G, R
    bgr[0, 1] = (0, 0, 65535)
    cv2.imwrite(str(tmp_path / "c16.png"), bgr)
    img = media.load_image(tmp_path / "c16.png")
    assert img.rgb.dtype == np.float32 and img.alpha is None
    np.testing.assert_allclose(img.rgb[0, 0] * 65535, [1.0, 32768, 65535], rtol=1e-6)
    np.testing.assert_array_equal(img.rgb[0, 1], [1.0, 0.0, 0.0])


def test_rgba_16bit_png(tmp_path):
    bgra = np.zeros((1, 1, 4), np.uint16)
    bgra[0, 0] = (0, 0, 65535, 32768)
    cv2.imwrite(str(tmp_path / "c16a.png"), bgra)
    img = media.load_image(tmp_path / "c16a.png")
    np.testing.assert_array_equal(img.rgb[0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(img.alpha, [[32768 / 65535]], rtol=1e-6)


def test_grey_alpha_16bit_png(tmp_path):
    (tmp_path / "ga.png").write_bytes(png16(np.array([[[1000, 2000], [65535, 0]]]), 4))
    img = media.load_image(tmp_path / "ga.png")
    np.testing.assert_allclose(img.rgb[0] * 65535, [[1000] * 3, [65535] * 3], rtol=1e-6)
    np.testing.assert_allclose(img.alpha * 65535, [[2000, 0]], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# load_image: EXIF orientation


def test_exif_orientation_6_is_upright(tmp_path):
    stored = np.zeros((2, 3, 3), np.uint8)  # H=2, W=3 as stored
    stored[0, 0] = (255, 0, 0)  # red at the stored top-left
    stored[1, 2] = (0, 0, 255)  # blue at the stored bottom-right
    Image.fromarray(stored).save(tmp_path / "o.png", exif=exif_orientation(6))
    img = media.load_image(tmp_path / "o.png")
    assert img.rgb.shape == (3, 2, 3)  # H and W swapped
    # orientation 6: turn 90 degrees clockwise to view; top-left goes to top-right
    np.testing.assert_array_equal(img.rgb[0, 1], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(img.rgb[2, 0], [0.0, 0.0, 1.0])
    assert img.rgb.sum() == 2.0


def test_exif_orientation_on_16bit_png(tmp_path):
    rgb = np.zeros((2, 3, 3), np.uint16)
    rgb[0, 0] = (65535, 1, 32768)
    exif = exif_orientation(6).tobytes()[6:]  # PNG stores the TIFF block without "Exif\0\0"
    (tmp_path / "o16.png").write_bytes(png16(rgb, 2, exif=exif))
    img = media.load_image(tmp_path / "o16.png")
    assert img.rgb.shape == (3, 2, 3)
    np.testing.assert_allclose(img.rgb[0, 1] * 65535, [65535, 1, 32768], rtol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation):
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 9
    img = Image.fromarray(a)
    img.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(img))
    np.testing.assert_array_equal(media.apply_orientation(a, orientation), expected)


# --------------------------------------------------------------------------------------------
# load_image: bad files


def _noise_png(path, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


def _bad_image(tmp_path, kind):
    p = tmp_path / f"{kind}.png"
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
    elif kind == "zero":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = _noise_png(p)
        p.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        yy, xx = np.mgrid[0:64, 0:64]
        Image.fromarray(((xx * 4) ^ (yy * 4)).astype(np.uint8)).save(p)
        data = bytearray(p.read_bytes())
        start = data.index(b"IDAT") + 20
        data[start : start + 40] = bytes(40)
        p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("missing", "file not found"),
        ("folder", "is a folder"),
        ("zero", "not a readable image (empty file, 0 bytes)"),
        ("garbage", "not a readable image (unknown format"),
        ("truncated", "not a readable image ("),
        ("corrupt", "not a readable image ("),
    ],
)
def test_bad_image_names_the_input(tmp_path, kind, problem):
    p = _bad_image(tmp_path, kind)
    with pytest.raises(InputError) as info:
        media.load_image(p, name="image=art.png")
    assert str(info.value).startswith("image=art.png: ")
    assert problem in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=str(p)):  # default name: the path
        media.load_image(p)


# --------------------------------------------------------------------------------------------
# save_image, to_uint8


def test_save_load_round_trip_rgba(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((5, 7, 3), dtype=np.float32)
    alpha = rng.random((5, 7), dtype=np.float32)
    out = media.save_image(tmp_path / "sub" / "cut.png", rgb, alpha)
    assert out == tmp_path / "sub" / "cut.png"
    assert [p.name for p in out.parent.iterdir()] == ["cut.png"]
    assert Image.open(out).mode == "RGBA"
    back = media.load_image(out)
    np.testing.assert_array_equal(media.to_uint8(back.rgb), media.to_uint8(rgb))
    np.testing.assert_array_equal(media.to_uint8(back.alpha), media.to_uint8(alpha))
    assert np.abs(back.rgb - rgb).max() <= 0.5 / 255 + 1e-6


def test_save_rgb_uint8_no_alpha(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = (10, 20, 30)
    media.save_image(tmp_path / "x.png", rgb)
    back = media.load_image(tmp_path / "x.png")
    assert back.alpha is None
    np.testing.assert_array_equal(media.to_uint8(back.rgb), rgb)


def test_save_image_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        media.save_image(tmp_path / "x.png", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alpha"):
        media.save_image(tmp_path / "x.png", np.zeros((2, 2, 3)), np.zeros((3, 2)))
    assert list(tmp_path.iterdir()) == []


def test_to_uint8_rounds_and_clips():
    x = np.array([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 128 / 255, 1.0, 1.3], np.float32)
    np.testing.assert_array_equal(media.to_uint8(x), [0, 0, 0, 1, 128, 255, 255])
    u = np.array([7], np.uint8)
    assert media.to_uint8(u) is u
    with pytest.raises(ValueError, match="finite"):
        media.to_uint8(np.array([0.5, np.nan]))
    with pytest.raises(TypeError):
        media.to_uint8(np.array([1, 2], np.int64))


# --------------------------------------------------------------------------------------------
# videos


def test_write_read_video_round_trip(tmp_path):
    frames = smooth_frames(5, 32, 48)
    out = media.write_video(tmp_path / "clip.mp4", frames, fps=12.5)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    video = media.read_video(out)
    assert video.frames.shape == (5, 32, 48, 3) and video.frames.dtype == np.uint8
    assert video.fps == 12.5
    diff = np.abs(video.frames.astype(np.float32) - frames.astype(np.float32))
    assert diff.mean() < 3
    assert media.probe_video(out) == (5, 12.5, (32, 48))


def test_write_video_float_frames_and_max_frames(tmp_path):
    frames = smooth_frames(4, 16, 16).astype(np.float32) / 255
    media.write_video(tmp_path / "f.mp4", frames, fps=np.float32(8))
    with pytest.raises(ValueError, match="crf"):
        media.write_video(tmp_path / "g.mp4", frames, fps=8, crf=60)
    with pytest.raises(ValueError, match="fps"):
        media.write_video(tmp_path / "g.mp4", frames, fps=0)
    video = media.read_video(tmp_path / "f.mp4", max_frames=2)
    assert video.frames.shape == (2, 16, 16, 3) and video.fps == 8.0
    assert np.abs(video.frames / 255.0 - frames[:2]).mean() < 3 / 255


def test_write_video_pads_odd_size_by_edge(tmp_path):
    frames = smooth_frames(3, 15, 21)
    media.write_video(tmp_path / "odd.mp4", frames, fps=10)
    video = media.read_video(tmp_path / "odd.mp4")
    assert video.frames.shape == (3, 16, 22, 3)
    got = video.frames.astype(np.float32)
    assert np.abs(got[:, :15, :21] - frames).mean() < 3
    # the added bottom row / right column repeat the last row / column
    assert np.abs(got[:, 15, :21] - frames[:, 14]).mean() < 3
    assert np.abs(got[:, :15, 21] - frames[:, :, 20]).mean() < 3


def test_write_video_nan_leaves_nothing(tmp_path):
    frames = smooth_frames(3, 8, 8).astype(np.float32) / 255
    frames[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        media.write_video(tmp_path / "bad.mp4", frames, fps=8)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "shape", [(8, 8, 3), (2, 8, 8, 4), (0, 8, 8, 3)], ids=["3-D", "4-channels", "T=0"]
)
def test_write_video_rejects_bad_arrays(tmp_path, shape):
    with pytest.raises(ValueError, match=r"\[T>=1, H, W, 3\]"):
        media.write_video(tmp_path / "bad.mp4", np.zeros(shape, np.uint8), fps=8)
    assert list(tmp_path.iterdir()) == []


def test_write_video_failing_midway_keeps_old_file(tmp_path):
    final = tmp_path / "clip.mp4"
    media.write_video(final, smooth_frames(2, 8, 8), fps=8)
    old = final.read_bytes()

    def frames_then_crash():
        yield from smooth_frames(3, 8, 8)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        media.write_video(final, frames_then_crash(), fps=8)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert final.read_bytes() == old

    def bad_frame_midway():
        yield np.zeros((8, 8, 3), np.float32)
        yield np.full((8, 8, 3), np.inf, np.float32)

    with pytest.raises(ValueError, match="finite"):
        media.write_video(tmp_path / "new.mp4", bad_frame_midway(), fps=8)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_write_video_streamed_frames(tmp_path):
    frames = smooth_frames(3, 10, 12)
    media.write_video(tmp_path / "s.mp4", iter(frames), fps=6)
    video = media.read_video(tmp_path / "s.mp4")
    assert video.frames.shape == (3, 10, 12, 3) and video.fps == 6.0
    with pytest.raises(ValueError, match="empty"):
        media.write_video(tmp_path / "e.mp4", iter([]), fps=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp4"]


def test_read_video_bad_inputs(tmp_path):
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    Image.new("RGB", (4, 4)).save(tmp_path / "still.png")
    cases = {
        "missing.mp4": "driving=missing.mp4: file not found",
        "zero.mp4": "driving=zero.mp4: empty file (0 bytes)",
        "text.mp4": "driving=text.mp4: no decodable video frames (",
        "still.png": "driving=still.png: is an image, not a video",
    }
    for file, message in cases.items():
        with pytest.raises(InputError) as info:
            media.read_video(tmp_path / file, name=f"driving={file}")
        assert str(info.value).startswith(message), str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no decodable video frames"):
        media.probe_video(tmp_path / "text.mp4")


def test_read_frame_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):  # plain string order would put 10 before 2
        Image.new("RGB", (5, 4), (i * 20, 0, 0)).save(folder / f"f{i}.png")
    Image.new("RGBA", (5, 4), (250, 0, 0, 0)).save(folder / "f11.png")  # alpha dropped
    (folder / "notes.txt").write_text("ignored")
    Image.new("RGB", (9, 9)).save(folder / ".hidden.png")
    video = media.read_video(folder, fps_default=5)
    assert video.frames.shape == (4, 4, 5, 3) and video.fps == 5.0
    np.testing.assert_array_equal(video.frames[:, 0, 0, 0], [20, 40, 200, 250])
    assert media.read_video(folder, max_frames=2).frames.shape[0] == 2
    assert media.read_video(folder).fps == 8.0
    assert media.probe_video(folder) == (4, 8.0, (4, 5))


def test_frame_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="driving=empty: folder holds no frame images"):
        media.read_video(empty, name="driving=empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (5, 4)).save(mixed / "a.png")
    Image.new("RGB", (6, 4)).save(mixed / "b.png")
    with pytest.raises(InputError, match="frame b.png is 6x4, frame a.png is 5x4"):
        media.read_video(mixed)
    (mixed / "b.png").write_bytes(b"broken")
    with pytest.raises(InputError, match=r"\(frame b.png\): not a readable image"):
        media.read_video(mixed)


def test_video_dataclass_checks():
    media.Video(np.zeros((1, 2, 2, 3), np.uint8), 8)
    with pytest.raises(ValueError):
        media.Video(np.zeros((1, 2, 2, 3), np.float32), 8)
    with pytest.raises(ValueError):
        media.Video(np.zeros((1, 2, 2, 3), np.uint8), 0)


# --------------------------------------------------------------------------------------------
# resize, and K scaled with the image


def test_nearest_upscale_checker():
    checker = np.array([[0, 255], [255, 0]], np.uint8)
    out = media.resize(checker, (4, 4), interpolation="nearest")
    np.testing.assert_array_equal(
        out, [[0, 0, 255, 255], [0, 0, 255, 255], [255, 255, 0, 0], [255, 255, 0, 0]]
    )


def test_nearest_downscale_samples_pixel_centres():
    row = np.arange(9, dtype=np.uint8).reshape(1, 9)
    out = media.resize(row, (3, 1), interpolation="nearest")
    np.testing.assert_array_equal(out, [[1, 4, 7]])  # the middle of each group of three


@pytest.mark.parametrize(
    "interpolation, size", [("nearest", (24, 16)), ("area", (6, 4)), ("linear", (36, 16))]
)
def test_resize_moves_content_and_K_together(interpolation, size):
    img = np.zeros((8, 12), np.float32)
    img[2:4, 4:6] = 1.0  # a 2x2 blob centred at (u, v) = (5, 3)
    X = np.linalg.inv(K0) @ np.array([5.0, 3.0, 1.0]) * 3.0
    np.testing.assert_allclose(project(K0, X), [5.0, 3.0])
    out = media.resize(img, size, interpolation)
    K1 = scale_intrinsics(K0, size[0] / 12, size[1] / 8)
    assert out.shape == (size[1], size[0]) and out.dtype == np.float32
    np.testing.assert_allclose(centroid(out), project(K1, X), atol=1e-5)


def test_scaled_K_is_exact_scaling():
    out = media.resize(np.zeros((480, 640, 3), np.uint8), (320, 300))
    assert out.shape == (300, 320, 3)
    sx, sy = 320 / 640, 300 / 480
    K1 = scale_intrinsics(K0, sx, sy)
    uv, uv1 = project(K0, X0), project(K1, X0)
    np.testing.assert_allclose(uv1, uv * [sx, sy], rtol=1e-12)
    np.testing.assert_allclose(uv1 / [320, 300], uv / [640, 480], rtol=1e-12)  # same relative place
    np.testing.assert_array_equal(K0[0, 0], 500.0)  # input K untouched
    Ks = np.stack([K0, K0 * [[2], [2], [1]]])  # [2, 3, 3]
    np.testing.assert_allclose(scale_intrinsics(Ks, sx, sy)[1], scale_intrinsics(Ks[1], sx, sy))
    with pytest.raises(ValueError, match="K"):
        scale_intrinsics(np.eye(4)[..., :2], sx, sy)


def test_fit_size_rounds_to_multiple():
    assert media.fit_size((500, 300), 256, 16) == (256, 160)  # 300 * 256/500 = 153.6 -> 160
    assert media.fit_size((500, 200), 500, 16) == (496, 208)  # 31.25 -> 31, 12.5 -> 13
    assert media.fit_size((1000, 10), 64, 16) == (64, 16)  # never below one multiple
    assert media.fit_size((500, 300), 100, 1) == (100, 60)


def test_resize_checks_inputs():
    img = np.zeros((4, 4, 1), np.float32)
    out = media.resize(img, (2, 2))
    assert out.shape == (2, 2, 1)
    with pytest.raises(ValueError, match="interpolation"):
        media.resize(img, (2, 2), interpolation="cubic")
    with pytest.raises(ValueError, match="size"):
        media.resize(img, (0, 2))
    with pytest.raises(ValueError, match="dtype"):
        media.resize(img.astype(bool), (2, 2))


@pytest.mark.parametrize("n,src,fps", [(10, 24, 8), (3, 8, 24), (7, 8, 8), (5, 30, 7),
                                       (11, 25, 30), (4, 8, 2.5), (9, 10, 37), (1, 30, 8)])
def test_sampled_reading_matches_the_whole_video_sampled(tmp_path, n, src, fps):
    """One streaming pass keeps exactly the frames that sampling the whole video would."""
    from dreamdance.media import read_video_sampled
    from dreamdance.train.prepare import resample_index

    frames = (np.arange(n)[:, None, None, None] * 20 + np.zeros((n, 8, 8, 3))).astype(np.uint8)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i:03d}.png")
    ref = resample_index(n, src, fps)
    for limit in (None, 1, 2, 5):
        video, index, decoded = read_video_sampled(tmp_path, fps, fps_default=src,
                                                   max_frames=limit)
        expected = ref if limit is None else ref[:limit]
        assert index.tolist() == expected.tolist(), (limit, index, expected)
        np.testing.assert_array_equal(video.frames, frames[expected])
        assert video.fps == fps and decoded <= n


def test_a_long_video_is_decoded_only_as_far_as_the_output_needs(tmp_path, monkeypatch):
    """5 frames at 8 fps from a 24 fps clip of 60: 13 source frames are decoded, and only the
    5 sampled ones (shrunk by ``transform`` as they come) are kept."""
    from dreamdance import media

    media.write_video(tmp_path / "long.mp4", np.zeros((60, 32, 32, 3), np.uint8), fps=24)
    decoded = []
    real = media.videos._open

    def counting(*args):
        rate, frames = real(*args)

        def counted():
            for frame in frames:
                decoded.append(1)
                yield frame
        return rate, counted()

    monkeypatch.setattr(media.videos, "_open", counting)
    shrunk = []
    video, index, n = media.read_video_sampled(
        tmp_path / "long.mp4", 8, max_frames=5,
        transform=lambda f: shrunk.append(1) or f[::4, ::4])
    assert video.frames.shape == (5, 8, 8, 3) and index.tolist() == [0, 3, 6, 9, 12]
    assert len(decoded) == n == 13 and len(shrunk) == 5
