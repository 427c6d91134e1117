"""Input images: what format they really are (by magic bytes), how big, and their dimensions."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, UnidentifiedImageError

ImageKind = Literal["png", "jpeg", "webp"]

MEDIA_TYPES: dict[ImageKind, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
MAX_IMAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ImageInfo:
    kind: ImageKind
    width: int
    height: int
    size_bytes: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]


def sniff_kind(data: bytes) -> ImageKind | None:
    """The image format by its magic bytes, whatever the file name or declared type says."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def inspect_image(data: bytes) -> ImageInfo:
    """Format and dimensions of a PNG/JPEG/WebP image. ValueError says what is wrong with anything else."""
    kind = sniff_kind(data)
    if kind is None:
        raise ValueError("is not a PNG, JPEG or WebP image (checked by its first bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.verify()  # walks the file's structure (PNG CRCs, JPEG markers): catches truncated uploads
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"looks like {kind.upper()} but is damaged or truncated ({type(exc).__name__})") from exc
    return ImageInfo(kind=kind, width=width, height=height, size_bytes=len(data))


def decode_base64_image(text: str) -> tuple[bytes, str | None]:
    """Bytes (and the declared media type) from a data URI or plain base64. ValueError if it is neither."""
    declared: str | None = None
    payload = text
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError("is a data URI but not a base64 one (expected data:image/...;base64,...)")
        declared = header[len("data:") : -len(";base64")] or None
    compact = "".join(payload.split())  # line-wrapped base64 (what the base64 command prints) is fine
    alphabet = b"-_" if ("-" in compact or "_" in compact) else None  # URL-safe base64 too (pydantic's own JSON)
    try:
        return base64.b64decode(compact, altchars=alphabet, validate=True), declared
    except (binascii.Error, ValueError) as exc:
        raise ValueError("is neither an https URL, a data URI nor valid base64") from exc


def to_data_uri(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def download_image(url: str, *, timeout: float = 20.0, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[bytes, ImageInfo]:
    """Fetch a user's (already URL-checked) image, bounded in size, redirects not followed. ValueError if bad."""
    import requests  # noqa: PLC0415 - only the /v1/videos dialect, given an image URL, needs this

    with requests.get(url, stream=True, timeout=timeout, allow_redirects=False) as response:
        if response.status_code != 200:
            raise ValueError(f"could not be downloaded (HTTP {response.status_code})")
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_content(64 * 1024):
            received += len(chunk)
            if received > max_bytes:
                raise ValueError(f"is larger than {max_bytes} bytes")
            chunks.append(chunk)
    data = b"".join(chunks)
    return data, inspect_image(data)
