"""Safe decoding: real type from the bytes, bombs and absurd sizes refused before decoding, EXIF handled."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media import decode
from media.detect import default_detector
from media.pipeline import process
from media.spec import PhotoSpec
from media.types import UnreadableImageError

PHOTOS = Path(__file__).parent / "fixtures" / "photos"


def photo(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes that declare width×height pixels: decoding it would need gigabytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def detector():
    return default_detector()


@pytest.mark.parametrize(
    ("blob", "kind", "named"),
    [
        (photo("document.pdf"), "pdf", "PDF"),
        (photo("not_a_photo.gif"), "gif", "GIF"),
        (encode(Image.new("RGB", (64, 64), "red"), "WEBP"), "webp", "WebP"),
        (encode(Image.new("RGB", (64, 64), "red"), "BMP"), "bmp", "BMP"),
        (encode(Image.new("RGB", (64, 64), "red"), "TIFF"), "tiff", "TIFF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "heic", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 64, "avif", "AVIF"),
        # A HEIF container's generic brand first: the compatible brands tell AVIF from HEIC.
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + b"\x00" * 64, "avif", "AVIF"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "heic", "HEIC"),
        # Same box, not a picture: an MP4 from the phone's camera.
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64, "video", "视频"),
        (b"PK\x03\x04" + b"\x00" * 100, "zip", "压缩包"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "svg", "SVG"),
        ("我的证件照\n".encode(), "text", "文本"),
        (b"", "empty", "空文件"),
        (bytes(range(256)) * 4, "unknown", "无法识别"),
    ],
)
def test_other_types_are_named_and_refused(blob: bytes, kind: str, named: str, detector) -> None:
    assert decode.sniff(blob) == kind
    with pytest.raises(UnreadableImageError) as err:
        process(blob, PhotoSpec(formats=("jpeg", "png")), detector=detector)
    assert named in err.value.message
    assert "JPG 或 PNG" in err.value.message


@pytest.mark.parametrize(
    ("blob", "mime"),
    [
        (photo("id_ok.jpg"), "image/jpeg"),
        (encode(Image.new("RGB", (64, 64), "red"), "TIFF"), "image/tiff"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 64, "image/avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "image/heic"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64, None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", None),  # never served as an image
        (photo("document.pdf"), None),
    ],
)
def test_image_mime_type_names_pictures_only(blob: bytes, mime: str | None) -> None:
    assert decode.image_mime_type(blob) == mime


def test_sniff_ignores_what_the_name_claims() -> None:
    png = encode(Image.new("RGB", (64, 64), "blue"), "PNG")
    assert decode.sniff(png) == "png"  # uploaded as photo.jpg: the bytes say PNG
    assert decode.sniff(photo("id_ok.jpg")) == "jpeg"


def test_png_named_jpg_is_kept_when_png_is_allowed(detector) -> None:
    png = encode(Image.open(PHOTOS / "id_ok.jpg"), "PNG")
    r = process(png, PhotoSpec(formats=("jpeg", "png"), max_bytes=2 * 1024 * 1024), detector=detector)
    assert r.format == "png" and r.check("format").ok
    assert r.normalized == png  # no metadata to strip: the very same file


def test_png_is_converted_when_only_jpeg_is_allowed(detector) -> None:
    png = encode(Image.open(PHOTOS / "id_ok.jpg"), "PNG")
    r = process(png, PhotoSpec(formats=("jpeg",)), detector=detector)
    assert r.format == "jpeg" and decode.sniff(r.normalized) == "jpeg"
    assert any("PNG 转换格式" in f for f in r.fixes)
    assert r.check("format").ok and r.passed


@pytest.mark.parametrize(("w", "h"), [(100_000, 100_000), (12_001, 400), (8000, 7000)])
def test_bombs_and_absurd_sizes_are_refused_before_decoding(w: int, h: int, detector) -> None:
    blob = bomb_png(w, h)
    assert len(blob) < 1000
    start = time.perf_counter()
    with pytest.raises(UnreadableImageError) as err:
        process(blob, PhotoSpec(formats=("jpeg", "png")), detector=detector)
    assert time.perf_counter() - start < 0.5  # nothing was decoded
    assert "尺寸异常" in err.value.message or "像素数过大" in err.value.message


def test_pillow_bomb_guard_is_set() -> None:
    assert Image.MAX_IMAGE_PIXELS == decode.MAX_PIXELS


def test_too_many_bytes_is_refused_before_opening(detector) -> None:
    blob = b"\xff\xd8\xff\xe0" + b"\x00" * (decode.MAX_INPUT_BYTES + 1)
    with pytest.raises(UnreadableImageError) as err:
        process(blob, PhotoSpec(), detector=detector)
    assert "文件太大" in err.value.message


def test_tiny_image_is_refused(detector) -> None:
    with pytest.raises(UnreadableImageError, match="太小"):
        process(encode(Image.new("RGB", (16, 16)), "JPEG"), PhotoSpec(), detector=detector)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg_is_refused(cut: float, detector) -> None:
    data = photo("id_ok.jpg")
    with pytest.raises(UnreadableImageError) as err:
        process(data[: int(len(data) * cut)], PhotoSpec(), detector=detector)
    assert "损坏或不完整" in err.value.message


def test_garbage_after_a_jpeg_header_is_refused(detector) -> None:
    with pytest.raises(UnreadableImageError, match="损坏或不完整"):
        process(b"\xff\xd8\xff\xe0" + b"\x13" * 5000, PhotoSpec(), detector=detector)


def gps_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestPhone"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (39.0, 54.0, 27.0)
    return exif


def test_exif_rotated_photo_comes_out_upright_without_exif(detector) -> None:
    upright = Image.open(PHOTOS / "id_ok.jpg")
    # Stored sideways as a phone does (640×480) with Orientation 6: "rotate 90° clockwise to view".
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    data = encode(sideways, "JPEG", quality=92, exif=gps_exif(6).tobytes())
    assert Image.open(io.BytesIO(data)).size == (640, 480)
    r = process(data, PhotoSpec(), detector=detector)
    assert (r.width, r.height) == (480, 640)
    assert any("转正" in f for f in r.fixes)
    out = Image.open(io.BytesIO(r.normalized))
    assert out.size == (480, 640)
    assert not out.getexif() and b"Exif" not in r.normalized and b"TestPhone" not in r.normalized
    assert r.check("roll").ok and r.check("eye_height").ok  # the face was found upright
    assert r.passed


def test_exif_is_stripped_losslessly_when_nothing_else_changes(detector) -> None:
    original = Image.open(PHOTOS / "id_ok.jpg")
    data = encode(original, "JPEG", quality=90, exif=gps_exif(1).tobytes(), comment=b"secret")
    r = process(data, PhotoSpec(), detector=detector)
    assert r.fixes == ["已去除照片中的拍摄信息（EXIF/GPS 等）"]
    assert b"Exif" not in r.normalized and b"secret" not in r.normalized
    a = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(r.normalized)).convert("RGB"))
    assert np.array_equal(a, b)  # same pixels: no re-encoding


def test_png_text_chunks_are_stripped() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "GPS 39.9N")
    data = encode(Image.new("RGB", (64, 64), "blue"), "PNG", pnginfo=info)
    stripped = decode.clean(data, "png")
    assert b"GPS" in data and b"GPS" not in stripped
    assert Image.open(io.BytesIO(stripped)).size == (64, 64)


POLYGLOT_TAIL = b"<html><script>alert(1)</script></html>" + b"PK\x03\x04" + b"\x00" * 26 + b"payload.txt"


def test_a_polyglot_jpeg_is_stored_as_the_image_alone(detector) -> None:
    # A JPEG that already meets the spec, with an HTML page and a ZIP appended after its end and a
    # foreign APP segment inside: what is kept is the image, byte for byte, and nothing else.
    image = photo("id_ok.jpg")
    assert image.endswith(b"\xff\xd9")
    app9 = b"\xff\xe9" + struct.pack(">H", 2 + 11) + b"<a href=x/>"
    data = image[:2] + app9 + image[2:] + POLYGLOT_TAIL
    r = process(data, PhotoSpec(), detector=detector)
    assert r.passed and r.normalized is not None
    assert r.normalized.endswith(b"\xff\xd9")
    for foreign in (b"<html", b"PK\x03\x04", b"payload", b"<a href"):
        assert foreign not in r.normalized
    assert r.normalized == decode.clean(image, "jpeg")
    a = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(r.normalized)).convert("RGB"))
    assert np.array_equal(a, b)


def test_a_progressive_jpeg_keeps_every_scan() -> None:
    data = encode(Image.open(PHOTOS / "id_ok.jpg"), "JPEG", quality=90, progressive=True)
    cleaned = decode.clean(data + POLYGLOT_TAIL, "jpeg")
    assert cleaned.count(b"\xff\xda") == data.count(b"\xff\xda") > 1
    assert cleaned == data  # nothing to take away from Pillow's own output
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(cleaned))), np.asarray(Image.open(io.BytesIO(data)))
    )


def test_a_png_keeps_only_its_image_chunks() -> None:
    data = encode(Image.new("RGB", (64, 64), "blue"), "PNG")
    iend = data.rindex(b"IEND") - 4
    private = png_chunk(b"htMl", b"<script>alert(1)</script>")
    hostile = data[:iend] + private + data[iend:] + POLYGLOT_TAIL
    cleaned = decode.clean(hostile, "png")
    assert cleaned == data
    assert b"script" not in cleaned and b"PK" not in cleaned


def test_a_jpeg_without_its_end_is_refused_by_clean() -> None:
    data = photo("id_ok.jpg")
    with pytest.raises(UnreadableImageError):
        decode.clean(data[: len(data) // 2], "jpeg")


def test_header_reads_sizes_without_decoding() -> None:
    h = decode.inspect(photo("phone_4000x3000.jpg"))
    assert (h.kind, h.width, h.height, h.mode, h.orientation) == ("jpeg", 4000, 3000, "RGB", 1)
    assert h.has_metadata  # the phone's EXIF with GPS


def test_draft_decode_scales_a_large_jpeg() -> None:
    img, scale = decode.load_rgb(photo("phone_4000x3000.jpg"), min_size=(900, 700))
    assert img.size == (1000, 750) and scale == 0.25


@pytest.mark.parametrize("top", [0.001, 0.3, 0.55, 0.999])
@pytest.mark.parametrize("min_size", [None, (1800, 1400)])
def test_decoding_the_top_rows_gives_the_rows_of_a_whole_decode(top: float, min_size) -> None:
    data = photo("phone_4000x3000.jpg")
    whole, scale = decode.load_rgb(data, min_size=min_size)
    part, part_scale = decode.load_rgb(data, min_size=min_size, top=top)
    rows = part.size[1]
    assert part_scale == scale and part.size[0] == whole.size[0]
    assert whole.size[1] * top < rows < whole.size[1] * top + 4
    assert np.array_equal(np.asarray(part), np.asarray(whole)[:rows])


@pytest.mark.parametrize("progressive", [False, True])
def test_top_rows_of_a_small_jpeg_and_a_cut_one_still_refused(progressive: bool) -> None:
    buf = io.BytesIO()
    Image.open(PHOTOS / "id_ok.jpg").save(buf, "JPEG", quality=85, progressive=progressive)
    data = buf.getvalue()
    whole, _ = decode.load_rgb(data)
    part, _ = decode.load_rgb(data, top=0.4)
    assert np.array_equal(np.asarray(part), np.asarray(whole)[: part.size[1]])
    with pytest.raises(UnreadableImageError):  # stopping early must not hide a file that ends too soon
        decode.load_rgb(data[: len(data) // 5], top=0.9)


def test_a_turned_jpeg_is_decoded_whole_even_when_only_its_top_is_needed() -> None:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (320, 240), (90, 160, 220)).save(buf, "JPEG", exif=exif.tobytes())
    img, _ = decode.load_rgb(buf.getvalue(), top=0.3)
    assert img.size == (240, 320)


def png16(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG of one colour: a few hundred KB that decode to width × height × 4 bytes."""
    row = b"\x00" + b"\x40\x00\x80\x00\xc0\x00\xff\xff" * width
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def test_a_png_too_large_to_decode_is_refused_from_its_header() -> None:
    # 50 MP of 16-bit RGBA in 0.6 MB, under the pixel limit: decoding it took a worker past 1 GB.
    data = png16(11999, 4166)
    assert len(data) < 1024 * 1024
    with pytest.raises(UnreadableImageError, match=r"像素过多.*JPG"):
        decode.inspect(data)


def test_header_of_a_png_decodes_no_pixel(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's PNG getexif() decodes the whole image; inspect must answer from the header alone.
    from PIL import PngImagePlugin

    def refuse(self: object) -> None:
        raise AssertionError("inspect decoded the pixels")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", refuse)
    header = decode.inspect(png16(4800, 3400))
    assert (header.kind, header.width, header.height, header.mode) == ("png", 4800, 3400, "RGBA")
    assert header.decoded_bytes == 4800 * 3400 * 4


def test_a_large_png_is_reduced_right_after_decoding_and_still_turned_upright() -> None:
    stored = Image.new("RGB", (3000, 2000), "white")
    stored.paste((0, 0, 0), (0, 0, 100, 100))  # a black corner: top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # view rotated 90° clockwise
    data = encode(stored, "PNG", exif=exif.tobytes())
    img, scale = decode.load_rgb(data, min_size=(600, 900))
    assert img.size == (667, 1000) and scale == pytest.approx(1 / 3, abs=0.01)
    # Rotated clockwise, the stored top-left corner is now top-right.
    assert img.getpixel((img.size[0] - 5, 5)) == (0, 0, 0)
    assert img.getpixel((5, 5)) == (255, 255, 255)


def test_large_decodes_take_turns_within_a_process() -> None:
    import threading

    from media import memory

    big = memory.LARGE_DECODE_BYTES + 1
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with memory.decoding(big):
            order.append("first in")
            inside.set()
            release.wait(5)
            order.append("first out")

    def second() -> None:
        with memory.decoding(big):
            order.append("second in")

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(5)
    b = threading.Thread(target=second)
    b.start()
    with memory.decoding(1024):  # a small decode never waits for a large one
        order.append("small")
    b.join(0.2)
    assert b.is_alive()  # still waiting for the first large decode
    release.set()
    a.join(5)
    b.join(5)
    assert order == ["first in", "small", "first out", "second in"]
