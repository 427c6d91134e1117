"""Small, real, playable H.264 MP4s made with PyAV, each encoded once per (seconds, width, height).

A task's video is the cached encoding plus a trailing `free` box naming the task: players and demuxers skip
`free` boxes, so every task serves different bytes without a second encode.
"""

from __future__ import annotations

import io
import struct
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import av
from PIL import Image, ImageDraw

FPS = 8
LONG_SIDE = 160

_encode_lock = threading.Lock()


def small_size(width: int, height: int) -> tuple[int, int]:
    """The requested aspect ratio at LONG_SIDE pixels on the long side, both sides even (yuv420p needs it)."""
    scale = LONG_SIDE / max(width, height, 1)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def task_video(task_id: str, seconds: int, width: int, height: int) -> bytes:
    """The MP4 a task serves: `seconds` long at a small size with the requested aspect ratio."""
    small_width, small_height = small_size(width, height)
    stamp = f"videogen-simulator task {task_id}".encode()
    return encoded_video(seconds, small_width, small_height) + struct.pack(">I4s", 8 + len(stamp), b"free") + stamp


def encoded_video(seconds: int, width: int, height: int) -> bytes:
    # The cache is read under the lock: with lru_cache outside it, N downloads arriving before the first
    # encode finished each encoded the same video again, one after the other (15 encodes for 50 jobs).
    with _encode_lock:
        return _cached_encode(seconds, width, height)


@lru_cache(maxsize=64)
def _cached_encode(seconds: int, width: int, height: int) -> bytes:
    return _encode(seconds, width, height)


def _encode(seconds: int, width: int, height: int) -> bytes:
    # faststart (moov before mdat) makes the muxer re-read its own output, which needs a real file.
    with tempfile.TemporaryDirectory(prefix="videogen-sim-") as folder:
        path = Path(folder) / "video.mp4"
        with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
            stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for index in range(max(1, seconds) * FPS):
                frame = av.VideoFrame.from_image(_picture(index, width, height))  # type: ignore[no-untyped-call]
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path.read_bytes()


def _picture(index: int, width: int, height: int) -> Image.Image:
    """A moving bar over a slowly shifting background, so frames differ and the video visibly plays."""
    image = Image.new("RGB", (width, height), (40 + index % 64, 90, 160))
    bar = (index * 4) % width
    ImageDraw.Draw(image).rectangle((bar, 0, min(width - 1, bar + width // 8), height - 1), fill=(240, 200, 40))
    return image


def still(width: int, height: int, image_format: str) -> bytes:
    """One frame as an image (PNG or JPEG), for `/content?variant=thumbnail|spritesheet`."""
    out = io.BytesIO()
    _picture(0, *small_size(width, height)).save(out, format=image_format)
    return out.getvalue()
