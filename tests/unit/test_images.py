"""Input images: format by magic bytes, dimensions from the header, base64 and data URIs both ways."""

from __future__ import annotations

import base64

import pytest

from functions.common.images import (
    MEDIA_TYPES,
    ImageInfo,
    decode_base64_image,
    inspect_image,
    sniff_kind,
    to_data_uri,
)
from tests.fixtures.images import gif_bytes, jpeg_bytes, noisy_png_bytes, padded_to, png_bytes, webp_bytes

# --- sniff_kind ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(png_bytes(8, 8), "png", id="png"),
        pytest.param(jpeg_bytes(8, 8), "jpeg", id="jpeg"),
        pytest.param(webp_bytes(8, 8), "webp", id="webp"),
        pytest.param(b"\x89PNG\r\n\x1a\n", "png", id="png-signature-only"),
        pytest.param(b"\xff\xd8\xff\xe0", "jpeg", id="jpeg-soi-only"),
        pytest.param(b"RIFF\x00\x00\x00\x00WEBP", "webp", id="webp-riff-header-only"),
    ],
)
def test_sniff_kind_knows_the_three_formats_by_their_first_bytes(data: bytes, kind: str) -> None:
    assert sniff_kind(data) == kind


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gif_bytes(8, 8), id="gif"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x89PNG", id="png-signature-cut"),
        pytest.param(b"\xff\xd8", id="jpeg-soi-cut"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVEfmt ", id="riff-wave"),
        pytest.param(b"RIFF\x00\x00\x00\x00WEB", id="riff-webp-cut"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(b"BM" + bytes(60), id="bmp"),
        pytest.param(b" \x89PNG\r\n\x1a\n", id="png-signature-not-at-start"),
    ],
)
def test_sniff_kind_is_none_for_anything_else(data: bytes) -> None:
    assert sniff_kind(data) is None


# --- inspect_image ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "media_type"),
    [
        pytest.param(png_bytes(321, 123), "png", "image/png", id="png"),
        pytest.param(jpeg_bytes(321, 123), "jpeg", "image/jpeg", id="jpeg"),
        pytest.param(webp_bytes(321, 123), "webp", "image/webp", id="webp"),
    ],
)
def test_inspect_image_reads_format_and_dimensions(data: bytes, kind: str, media_type: str) -> None:
    # Given a 321x123 image
    # When it is inspected
    info = inspect_image(data)
    # Then its format, media type, size in pixels and in bytes
    assert info == ImageInfo(kind=kind, width=321, height=123, size_bytes=len(data))  # type: ignore[arg-type]
    assert info.media_type == media_type


def test_inspect_image_does_not_transpose_portrait_images() -> None:
    info = inspect_image(png_bytes(720, 1280))
    assert (info.width, info.height) == (720, 1280)


def test_inspect_image_ignores_trailing_bytes() -> None:
    data = padded_to(png_bytes(40, 30), 10_000)
    info = inspect_image(data)
    assert (info.width, info.height, info.size_bytes) == (40, 30, 10_000)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gif_bytes(16, 16), id="gif"),
        pytest.param(b"", id="empty"),
        pytest.param(bytes(range(256)), id="random"),
    ],
)
def test_inspect_image_refuses_other_formats(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"^is not a PNG, JPEG or WebP image \(checked by its first bytes\)$"):
        inspect_image(data)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(png_bytes(400, 300)[:8], "PNG", id="png-signature-only"),
        pytest.param(png_bytes(400, 300)[:20], "PNG", id="png-cut-in-ihdr"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "PNG", id="png-signature-then-garbage"),
        pytest.param(jpeg_bytes(400, 300)[:10], "JPEG", id="jpeg-cut-in-header"),
        pytest.param(b"\xff\xd8\xff" + bytes(100), "JPEG", id="jpeg-soi-then-zeros"),
        pytest.param(webp_bytes(400, 300)[:12], "WEBP", id="webp-riff-header-only"),
        pytest.param(b"RIFF\x20\x00\x00\x00WEBPVP8 " + bytes(20), "WEBP", id="webp-corrupt-vp8"),
    ],
)
def test_inspect_image_truncated_or_corrupt_is_a_value_error(data: bytes, kind: str) -> None:
    # Given bytes that start like an image but are cut off or corrupt
    # When they are inspected
    # Then a ValueError says which format they looked like
    with pytest.raises(ValueError, match=rf"^looks like {kind} but is damaged or truncated \("):
        inspect_image(data)


def test_media_types_cover_every_kind() -> None:
    assert MEDIA_TYPES == {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


# --- base64 and data URIs --------------------------------------------------------------------------------

IMAGE = noisy_png_bytes(16, 16)


def test_decode_data_uri_returns_bytes_and_declared_type() -> None:
    uri = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
    assert decode_base64_image(uri) == (IMAGE, "image/png")


def test_decode_data_uri_without_a_media_type_declares_none() -> None:
    uri = "data:;base64," + base64.b64encode(IMAGE).decode()
    assert decode_base64_image(uri) == (IMAGE, None)


def test_decode_keeps_a_wrong_declared_type_for_the_caller_to_overrule() -> None:
    uri = "data:image/gif;base64," + base64.b64encode(IMAGE).decode()
    assert decode_base64_image(uri) == (IMAGE, "image/gif")


def test_decode_plain_base64() -> None:
    assert decode_base64_image(base64.b64encode(IMAGE).decode()) == (IMAGE, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("data:image/png,iVBORw0KGgo=", "is a data URI but not a base64 one", id="data-uri-not-base64"),
        pytest.param("data:image/png;base64", "is a data URI but not a base64 one", id="data-uri-without-comma"),
        pytest.param("data:image/png;base64,@@@@", "is neither an https URL", id="data-uri-bad-payload"),
        pytest.param("not base64!", "is neither an https URL", id="punctuation"),
        pytest.param("abc", "is neither an https URL", id="bad-padding"),
    ],
)
def test_decode_refuses_what_is_not_base64(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_base64_image(text)


def test_decode_accepts_line_wrapped_and_url_safe_base64() -> None:
    # Given an image encoded as the base64 command prints it (wrapped at 76) and as URL-safe base64
    import base64

    wrapped = base64.encodebytes(IMAGE).decode("ascii")
    url_safe = base64.urlsafe_b64encode(IMAGE).decode("ascii")
    assert "\n" in wrapped
    assert "-" in url_safe or "_" in url_safe
    # When each is decoded / Then the bytes come back unchanged
    assert decode_base64_image(wrapped) == (IMAGE, None)
    assert decode_base64_image(url_safe) == (IMAGE, None)


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        pytest.param(png_bytes(10, 10), "image/png", id="png"),
        pytest.param(jpeg_bytes(10, 10), "image/jpeg", id="jpeg"),
        pytest.param(webp_bytes(10, 10), "image/webp", id="webp"),
        pytest.param(IMAGE, "image/png", id="noisy-png"),
    ],
)
def test_to_data_uri_round_trips_through_decode(data: bytes, media_type: str) -> None:
    # Given image bytes
    # When they are made a data URI and decoded again
    uri = to_data_uri(data, media_type)
    # Then the URI is a standard base64 data URI and decodes to the same bytes and type
    assert uri.startswith(f"data:{media_type};base64,")
    assert decode_base64_image(uri) == (data, media_type)
    assert inspect_image(decode_base64_image(uri)[0]).media_type == media_type
