"""Store benchmark: peak memory and throughput of ``stream_to_s3`` against boto3 uploading a local file.

Setup, each in its own process so that only the store side is measured:
- S3 is moto's server (``python -m moto.server``) on a free loopback port;
- the provider's download host is a stdlib HTTP server serving an N MiB body with Content-Length: an MP4
  ``ftyp`` box, then a deterministic pseudo-random pattern generated block by block (never held whole);
- the same N MiB are written to a local file in a temporary directory.

Measurements, each in a FRESH worker process that imports everything, creates its S3 client and makes one
warm-up call, then resets the kernel's peak-RSS mark (``/proc/self/clear_refs`` = 5) and reads VmRSS:
- ours: ``stream_to_s3`` from the download host into the bucket (its sha256 and size are checked against
  the pattern's);
- baseline: ``upload_fileobj`` of the local file, with the same ``TransferConfig`` (``transfer_config``).
Peak RSS delta = VmHWM after the call − VmRSS just before it: the memory the call itself added, start-up
excluded. Throughput = N MiB / wall time of the call. Where clear_refs cannot be written the mark is not
reset, and the figure is an upper bound (start-up may have peaked higher than the call). Linux only (/proc).

Each side runs ``--repeat`` times (default 3), alternated; the figures are the median wall time and the
largest peak RSS delta. Prints a few lines, and last the summary other tools read:
``store_streaming size_mb=N peak_rss_delta_mb=X throughput_ratio=Y`` (Y = our throughput / baseline's).
Goals at N = 512: X ≤ 64, Y ≥ 0.8. ``--size-mb 16`` makes a quick run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
BUCKET = "videogen-bench"
REGION = "us-east-1"
FTYP_BOX = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def s3_client(endpoint: str) -> S3Client:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )


# --- the payload: N MiB, deterministic, generated one MiB at a time ---------------------------------------


def payload_blocks(size_mb: int) -> Iterator[bytes]:
    pattern = random.Random(20240601).randbytes(MIB)
    for index in range(size_mb):
        head = FTYP_BOX if index == 0 else index.to_bytes(len(FTYP_BOX), "big")
        yield head + pattern[len(head) :]


def serve_payload(size_mb: int) -> None:
    """Child process: serve the payload at /video.mp4 on a free loopback port; print the port, then serve."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size_mb * MIB))
            self.end_headers()
            for block in payload_blocks(size_mb):
                self.wfile.write(block)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# --- a measurement: one fresh process each -----------------------------------------------------------------


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(mode: str, endpoint: str, source: str, size_mb: int, part_mb: int) -> None:
    """Worker process: one upload, measured; prints one JSON line."""
    from functions.store.streaming import stream_to_s3, transfer_config

    s3 = s3_client(endpoint)
    s3.head_bucket(Bucket=BUCKET)  # warm-up: service model loaded, connection open
    key = f"bench/{mode}.mp4"
    exact = _reset_peak_rss()
    before_kib = _proc_status_kib("VmRSS")
    started = time.perf_counter()
    sha256 = None
    if mode == "stream":
        stored = stream_to_s3(
            source,
            headers={},
            s3_client=s3,
            bucket=BUCKET,
            key=key,
            max_bytes=size_mb * MIB,
            part_size=part_mb * MIB,
        )
        sha256 = stored.sha256
        assert stored.bytes == size_mb * MIB
    else:
        with open(source, "rb") as file:
            s3.upload_fileobj(
                file, BUCKET, key, ExtraArgs={"ContentType": "video/mp4"}, Config=transfer_config(part_mb * MIB)
            )
    seconds = time.perf_counter() - started
    peak_kib = _proc_status_kib("VmHWM")
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    s3.delete_object(Bucket=BUCKET, Key=key)  # frees the moto server's copy before the next run
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_delta_mb": (peak_kib - before_kib) / 1024,
                "exact": exact,
                "sha256": sha256,
                "size": size,
            }
        )
    )


def run_worker(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[:2]} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- orchestration -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_answers(url: str, seconds: float = 30) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=1)
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {seconds:g} s") from None
            time.sleep(0.1)
        else:
            return


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def stop_all(children: list[subprocess.Popen[Any]]) -> None:
    for child in reversed(children):
        stop(child)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=512, help="video size in MiB (default 512)")
    parser.add_argument("--part-mb", type=int, default=8, help="part size in MiB (default 8, as in production)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternated (default 3)")
    parser.add_argument("--serve-payload", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=3, metavar=("MODE", "ENDPOINT", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_payload:
        serve_payload(args.size_mb)
        return
    if args.measure:
        mode, endpoint, source = args.measure
        measure(mode, endpoint, source, size_mb=args.size_mb, part_mb=args.part_mb)
        return
    benchmark(args.size_mb, args.part_mb, args.repeat)


def benchmark(size_mb: int, part_mb: int, repeat: int) -> None:
    sizes = ["--size-mb", str(size_mb), "--part-mb", str(part_mb)]
    children: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory(prefix="videogen-bench-") as folder, contextlib.ExitStack() as cleanup:
        cleanup.callback(stop_all, children)
        s3_port = free_port()
        endpoint = f"http://127.0.0.1:{s3_port}"
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        host = subprocess.Popen(
            [sys.executable, __file__, "--serve-payload", *sizes], stdout=subprocess.PIPE, text=True
        )
        children.append(host)
        assert host.stdout is not None
        video_url = f"http://127.0.0.1:{int(host.stdout.readline())}/video.mp4"
        wait_until_answers(endpoint)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)

        local_file = Path(folder) / "video.mp4"
        expected = hashlib.sha256()
        with local_file.open("wb") as out:
            for block in payload_blocks(size_mb):
                expected.update(block)
                out.write(block)

        print(f"store_streaming: {size_mb} MiB, {part_mb} MiB parts, {repeat} runs each, moto server at {endpoint}")
        runs: dict[str, list[dict[str, Any]]] = {"file": [], "stream": []}
        for _ in range(repeat):  # alternated, so a slow spell of the shared machine hits both sides
            runs["file"].append(run_worker("--measure", "file", endpoint, str(local_file), *sizes))
            runs["stream"].append(run_worker("--measure", "stream", endpoint, video_url, *sizes))
        for run in runs["stream"]:
            if run["sha256"] != expected.hexdigest() or run["size"] != size_mb * MIB:
                raise RuntimeError("the streamed object does not match the served video")

        summary = {mode: _summarise(results) for mode, results in runs.items()}
        for name, mode in (("upload_fileobj(local file)", "file"), ("stream_to_s3(http)", "stream")):
            seconds, peak, exact = summary[mode]
            print(
                f"  {name:<27} median {seconds:6.2f} s  {size_mb / seconds:7.1f} MiB/s  peak RSS +{peak:.1f} MiB (max)"
                f"{'' if exact else ' (peak mark not reset: upper bound)'}"
            )
            each = ", ".join(f"{run['seconds']:.2f} s" for run in runs[mode])
            print(f"  {'':<27} runs: {each}")
        print("  every streamed object verified: size and sha256 match the served video")
        ratio = summary["file"][0] / summary["stream"][0]
        peak = summary["stream"][1]
        print(f"store_streaming size_mb={size_mb} peak_rss_delta_mb={peak:.1f} throughput_ratio={ratio:.2f}")


def _summarise(results: list[dict[str, Any]]) -> tuple[float, float, bool]:
    """Median wall time, largest peak RSS delta, whether every peak was exact."""
    return (
        statistics.median(run["seconds"] for run in results),
        max(run["peak_rss_delta_mb"] for run in results),
        all(run["exact"] for run in results),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
