"""Streaming a provider's video into S3: the object is the complete, verified video, or nothing at all.

A real HTTP server on 127.0.0.1 plays the provider's download host, one scenario per test; moto plays S3.
Every failure is checked for its error class and message, and for the absence of both an object at the key
and an incomplete multipart upload.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.common.errors import (
    OutputExpiredError,
    OutputInvalidError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    VideogenError,
)
from functions.store.streaming import MIB, StoredObject, check_output_url, stream_to_s3
from tests.fixtures.aws import use_fake_aws

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "videogen-test-videos"
KEY = "videos/job-123/video.mp4"
SECRET = "sk-cometapi-very-secret-key"
AUTH = {"Authorization": f"Bearer {SECRET}"}
PART = 5 * MIB
LIMIT = 64 * MIB
FTYP_BOX = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


@functools.cache
def mp4_payload(size: int) -> bytes:
    """``size`` bytes that start like an MP4 (an ``ftyp`` box) followed by random bytes."""
    return FTYP_BOX + os.urandom(size - len(FTYP_BOX))


# --- the provider's download host ------------------------------------------------------------------------


@dataclass
class Scenario:
    """What the download host does for the next request. ``mode``: ok, chunked, truncated, reset, stall."""

    payload: bytes = b""
    mode: str = "ok"
    status: int = 200
    content_type: str = "video/mp4"
    redirects: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    written: int = 0
    answered: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _DownloadHost

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        try:
            self._answer(self.server.scenario)
        finally:
            self.server.scenario.answered.set()

    def _answer(self, scenario: Scenario) -> None:
        scenario.seen.append((self.path, dict(self.headers.items())))
        self.close_connection = True
        if self.path in scenario.redirects:
            self.send_response(302)
            self.send_header("Location", scenario.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")  # it does close: say so, or the client may reuse the socket
            self.end_headers()
            return
        if scenario.status != 200:
            self._send_page(scenario.status, b"<html><body>Access Denied</body></html>", "text/html")
            return
        payload, mode = scenario.payload, scenario.mode
        self.send_response(200)
        if scenario.content_type:
            self.send_header("Content-Type", scenario.content_type)
        self.send_header("Connection", "close")
        if mode in ("chunked", "reset"):
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if mode == "ok":
            self._write(payload)
        elif mode == "chunked":
            self._write_chunks(payload)
            self.wfile.write(b"0\r\n\r\n")
        elif mode == "truncated":  # promised every byte, sends half, closes cleanly
            self._write(payload[: len(payload) // 2])
        elif mode == "reset":  # half the chunks, then (once the client has read them) a TCP reset
            self._write_chunks(payload[: len(payload) // 2])
            scenario.release.wait(0.3)  # a reset discards what the client has not read yet
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif mode == "stall":  # half, then silence until the test ends
            self._write(payload[: len(payload) // 2])
            scenario.release.wait(10)

    def _send_page(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _write(self, data: bytes) -> None:
        for start in range(0, len(data), 256 * 1024):
            piece = data[start : start + 256 * 1024]
            self.wfile.write(piece)
            self.server.scenario.written += len(piece)

    def _write_chunks(self, data: bytes) -> None:
        for start in range(0, len(data), 256 * 1024):
            chunk = data[start : start + 256 * 1024]
            self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))


class _DownloadHost(ThreadingHTTPServer):
    daemon_threads = True
    scenario: Scenario

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: the reset and truncated scenarios break connections on purpose."""


@dataclass
class Host:
    server: _DownloadHost

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, payload: bytes = b"", **kwargs: Any) -> Scenario:
        self.server.scenario = Scenario(payload=payload, **kwargs)
        return self.server.scenario


@pytest.fixture
def host() -> Iterator[Host]:
    server = _DownloadHost(("127.0.0.1", 0), _Handler)
    server.scenario = Scenario()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Host(server)
    finally:
        server.scenario.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    use_fake_aws(monkeypatch, "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def s3_calls(s3: S3Client) -> list[str]:
    """The names of the S3 operations called from now on, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    s3.meta.events.register("before-call.s3", record)
    return calls


def store(host: Host, s3: S3Client, path: str = "/video.mp4", **kwargs: Any) -> StoredObject:
    arguments: dict[str, Any] = {
        "headers": AUTH,
        "s3_client": s3,
        "bucket": BUCKET,
        "key": KEY,
        "max_bytes": LIMIT,
        "metadata": {"job-id": "job-123", "model": "veo3-fast"},
        "part_size": PART,
        "read_timeout": 5,
    } | kwargs
    return stream_to_s3(host.base + path, **arguments)


def failure(host: Host, s3: S3Client, expected: type[VideogenError], **kwargs: Any) -> VideogenError:
    """Storing fails with ``expected`` and leaves nothing behind: no object, no incomplete multipart upload."""
    with pytest.raises(expected) as caught:
        store(host, s3, **kwargs)
    assert_nothing_stored(s3)
    return caught.value


def assert_nothing_stored(s3: S3Client) -> None:
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=BUCKET, Key=KEY)
    assert missing.value.response["Error"]["Code"] == "404"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def assert_stored(s3: S3Client, stored: StoredObject, payload: bytes, content_type: str = "video/mp4") -> None:
    assert stored == StoredObject(BUCKET, KEY, len(payload), hashlib.sha256(payload).hexdigest(), content_type)
    obj = s3.get_object(Bucket=BUCKET, Key=KEY)
    assert obj["Body"].read() == payload
    assert obj["ContentType"] == content_type
    assert obj["Metadata"] == {"job-id": "job-123", "model": "veo3-fast"}
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


# --- success ---------------------------------------------------------------------------------------------


def test_a_small_video_is_stored_whole_with_its_type_metadata_and_hash(host: Host, s3: S3Client) -> None:
    # Given a 1 MiB video served with Content-Length
    payload = mp4_payload(1 * MIB + 123)
    scenario = host.serve(payload)
    # When it is stored
    stored = store(host, s3)
    # Then the object is exactly the served bytes, and the download carried the caller's headers
    assert_stored(s3, stored, payload)
    assert scenario.seen[0][1]["Authorization"] == AUTH["Authorization"]


def test_a_large_video_is_stored_through_a_multipart_upload(host: Host, s3: S3Client) -> None:
    # Given a 20 MiB video and 5 MiB parts
    payload = mp4_payload(20 * MIB)
    host.serve(payload)
    # When it is stored
    stored = store(host, s3)
    # Then the object is whole, and S3 assembled it from 4 parts
    assert_stored(s3, stored, payload)
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"].endswith('-4"')


def test_a_chunked_video_without_content_length_is_stored(host: Host, s3: S3Client) -> None:
    # Given a 7 MiB video sent chunked, with no Content-Length
    payload = mp4_payload(7 * MIB)
    host.serve(payload, mode="chunked")
    # When it is stored
    stored = store(host, s3)
    # Then the object is whole
    assert_stored(s3, stored, payload)


@pytest.mark.parametrize("content_type", ["application/octet-stream", "binary/octet-stream", ""])
def test_an_octet_stream_video_is_stored_as_video_mp4(host: Host, s3: S3Client, content_type: str) -> None:
    # Given a video served as a generic byte stream (binary/... is S3's default; "" sends no Content-Type)
    payload = mp4_payload(256 * 1024)
    host.serve(payload, content_type=content_type)
    # When it is stored
    stored = store(host, s3)
    # Then its type is normalised to video/mp4
    assert_stored(s3, stored, payload, content_type="video/mp4")


def test_the_providers_video_type_is_kept(host: Host, s3: S3Client) -> None:
    # Given a video served as video/quicktime; charset=binary
    payload = mp4_payload(64 * 1024)
    host.serve(payload, content_type="video/QuickTime; charset=binary")
    # When it is stored
    stored = store(host, s3)
    # Then the object keeps the provider's media type, without parameters
    assert_stored(s3, stored, payload, content_type="video/quicktime")


# --- the answer is not the video -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404])
def test_an_expired_link_is_output_expired(host: Host, s3: S3Client, status: int) -> None:
    # Given a download link that answers 403 or 404
    host.serve(status=status)
    # When storing it
    error = failure(host, s3, OutputExpiredError)
    # Then the error says the link expired, permanently
    assert error.message.startswith(f"the provider's download link has expired (HTTP {status} from 127.0.0.1)")
    assert error.code == "output_expired"
    assert not error.retryable


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_retryable(host: Host, s3: S3Client, status: int) -> None:
    host.serve(status=status)
    error = failure(host, s3, ProviderUnavailableError)
    assert f"(HTTP {status})" in error.message
    assert error.retryable


def test_rate_limiting_is_retryable(host: Host, s3: S3Client) -> None:
    host.serve(status=429)
    error = failure(host, s3, ProviderRateLimitedError)
    assert error.retryable


def test_another_status_is_output_invalid(host: Host, s3: S3Client) -> None:
    host.serve(status=400)
    error = failure(host, s3, OutputInvalidError)
    assert "answered HTTP 400 from 127.0.0.1" in error.message


def test_an_html_page_is_output_invalid_naming_its_type(host: Host, s3: S3Client) -> None:
    # Given an error page served with 200 and text/html
    host.serve(b"<!DOCTYPE html><html>Sign in</html>", content_type="text/html; charset=utf-8")
    # When storing it
    error = failure(host, s3, OutputInvalidError)
    # Then the error names the type it got
    assert "served 'text/html; charset=utf-8' instead of a video" in error.message


def test_a_body_without_the_mp4_signature_is_output_invalid(host: Host, s3: S3Client, s3_calls: list[str]) -> None:
    # Given 6 MiB labelled video/mp4 that is not an MP4
    host.serve(b"<!DOCTYPE html>" + os.urandom(6 * MIB))
    # When storing it
    error = failure(host, s3, OutputInvalidError)
    # Then the error says it is not an MP4, and shows how it starts; S3 was not even called before the check
    assert "is not an MP4 video (no 'ftyp' box at byte 4; it starts with b'<!DOCTYPE ht')" in error.message
    assert s3_calls[:1] == ["HeadObject"]  # the first call is failure()'s own check


def test_an_empty_body_is_output_invalid(host: Host, s3: S3Client) -> None:
    host.serve(b"")
    error = failure(host, s3, OutputInvalidError)
    assert "is not an MP4 video" in error.message


# --- the body is cut short -------------------------------------------------------------------------------


def test_a_truncated_small_body_is_retryable_and_never_put(host: Host, s3: S3Client, s3_calls: list[str]) -> None:
    # Given a host that promises 1 MiB (under the part size: one PutObject) and closes after half of it
    host.serve(mp4_payload(1 * MIB), mode="truncated")
    # When storing it
    error = failure(host, s3, ProviderUnavailableError)
    # Then the error is retryable and says how much of what arrived, and the PutObject was never sent
    assert re.search(rf"was cut short after \d+ of {MIB} bytes", error.message), error.message
    assert error.retryable
    assert "PutObject" not in s3_calls


def test_a_truncated_large_body_aborts_its_multipart_upload(host: Host, s3: S3Client, s3_calls: list[str]) -> None:
    # Given a host that promises 20 MiB and closes after 10 MiB (after two 5 MiB parts)
    size = 20 * MIB
    host.serve(mp4_payload(size), mode="truncated")
    # When storing it
    error = failure(host, s3, ProviderUnavailableError)
    # Then the error is retryable, the upload that had started was aborted, and never completed
    assert re.search(rf"was cut short after \d+ of {size} bytes \(the connection", error.message), error.message
    assert error.retryable
    # (whether a part was sent before the cut depends on thread timing; the abort must happen either way)
    assert {"CreateMultipartUpload", "AbortMultipartUpload"} <= set(s3_calls)
    assert "CompleteMultipartUpload" not in s3_calls


def test_a_connection_reset_mid_stream_is_retryable_and_stores_nothing(
    host: Host, s3: S3Client, s3_calls: list[str]
) -> None:
    # Given a chunked download that is reset after 6 MiB (one 5 MiB part already read)
    host.serve(mp4_payload(12 * MIB), mode="reset")
    # When storing it
    error = failure(host, s3, ProviderUnavailableError)
    # Then it is retryable, and the multipart upload was aborted
    assert re.search(r"was cut short after \d+ bytes \(the connection broke\)", error.message), error.message
    assert "AbortMultipartUpload" in s3_calls


def test_a_stalled_download_times_out_retryably(host: Host, s3: S3Client) -> None:
    host.serve(mp4_payload(1 * MIB), mode="stall")
    error = failure(host, s3, ProviderUnavailableError, read_timeout=0.3)
    assert "(no data for 0.3 s)" in error.message


def test_an_unreachable_host_is_retryable(host: Host, s3: S3Client) -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # When storing from it
    with pytest.raises(ProviderUnavailableError) as caught:
        stream_to_s3(
            f"http://127.0.0.1:{port}/video.mp4", headers={}, s3_client=s3, bucket=BUCKET, key=KEY, max_bytes=LIMIT
        )
    # Then it is retryable, and nothing was stored
    assert "could not connect to the provider's download server 127.0.0.1" in caught.value.message
    assert_nothing_stored(s3)


def test_a_failed_s3_upload_stops_the_download(host: Host, s3: S3Client, s3_calls: list[str]) -> None:
    # Given a 64 MiB video, and S3 failing every UploadPart
    size = 64 * MIB
    scenario = host.serve(FTYP_BOX + bytes(size - len(FTYP_BOX)))

    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}}, "x")

    s3.meta.events.register("before-call.s3.UploadPart", fail)
    # When storing it
    with pytest.raises(ClientError, match="InternalError"):
        store(host, s3)
    # Then S3's error surfaces, the upload was aborted, and the rest of the video was never downloaded
    assert_nothing_stored(s3)
    assert "AbortMultipartUpload" in s3_calls
    assert scenario.answered.wait(5)
    assert scenario.written < size // 2


# --- size limit ------------------------------------------------------------------------------------------


def test_a_declared_size_over_the_limit_is_refused_before_reading(host: Host, s3: S3Client) -> None:
    host.serve(mp4_payload(2 * MIB))
    error = failure(host, s3, OutputInvalidError, max_bytes=1 * MIB)
    assert f"is {2 * MIB} bytes, more than the {MIB}-byte limit" in error.message


def test_an_undeclared_size_over_the_limit_is_refused_while_streaming(
    host: Host, s3: S3Client, s3_calls: list[str]
) -> None:
    # Given a chunked 12 MiB download and a 7 MiB limit (one part is uploaded before the limit is crossed)
    host.serve(mp4_payload(12 * MIB), mode="chunked")
    # When storing it
    error = failure(host, s3, OutputInvalidError, max_bytes=7 * MIB)
    # Then it is refused as too large, and the multipart upload was aborted
    assert f"is larger than the {7 * MIB}-byte limit" in error.message
    assert "AbortMultipartUpload" in s3_calls


# --- redirects and secrets -------------------------------------------------------------------------------


def test_redirects_keep_headers_on_the_same_origin_only(host: Host, s3: S3Client) -> None:
    # Given /content redirecting to /same, which redirects to another origin (localhost) serving the video
    payload = mp4_payload(64 * 1024)
    port = host.server.server_address[1]
    scenario = host.serve(payload, redirects={"/content": "/same", "/same": f"http://localhost:{port}/blob?sig=abc"})
    # When it is stored
    stored = store(host, s3, path="/content")
    # Then the caller's headers went to 127.0.0.1 only, never to the other origin
    assert_stored(s3, stored, payload)
    assert [path for path, _ in scenario.seen] == ["/content", "/same", "/blob?sig=abc"]
    assert [headers.get("Authorization") for _, headers in scenario.seen] == [AUTH["Authorization"]] * 2 + [None]


def test_a_redirect_into_a_refused_address_is_not_followed(host: Host, s3: S3Client) -> None:
    # Given a redirect to the cloud metadata address, and a guard that vets redirect targets
    scenario = host.serve(mp4_payload(1024), redirects={"/content": "http://169.254.169.254/latest/meta-data/"})
    guard = functools.partial(check_output_url, allow_loopback=True, resolve=must_not_resolve)
    # When storing it
    error = failure(host, s3, OutputInvalidError, path="/content", url_guard=guard)
    # Then the target was refused before it was fetched
    assert "cloud metadata address" in error.message
    assert [path for path, _ in scenario.seen] == ["/content"]


def test_headers_are_never_logged(host: Host, s3: S3Client, caplog: pytest.LogCaptureFixture) -> None:
    # Given every logger at DEBUG
    caplog.set_level(logging.DEBUG)
    host.serve(mp4_payload(64 * 1024))
    # When a store succeeds and another fails
    store(host, s3)
    host.serve(status=403)
    with pytest.raises(OutputExpiredError):
        store(host, s3)
    # Then the key appears in no log record
    assert caplog.records
    assert SECRET not in caplog.text


def test_a_part_size_below_the_s3_minimum_is_a_programming_error(host: Host, s3: S3Client) -> None:
    with pytest.raises(ValueError, match="part_size must be at least"):
        store(host, s3, part_size=1 * MIB)


# --- check_output_url ------------------------------------------------------------------------------------


def must_not_resolve(hostname: str) -> NoReturn:
    raise AssertionError(f"an IP literal must be checked without resolving (asked for {hostname!r})")


def dns(table: dict[str, list[str]]) -> Any:
    def resolve(hostname: str) -> list[str]:
        if hostname not in table:
            raise socket.gaierror(socket.EAI_NONAME, f"no record for {hostname}")
        return table[hostname]

    return resolve


RESOLVER = dns(
    {
        "cdn.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "localhost": ["127.0.0.1", "::1"],
        "sneaky.example.com": ["93.184.216.34", "10.0.0.7"],
        "metadata.example.com": ["169.254.169.254"],
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/v/123.mp4?sig=abc",
        "http://cdn.example.com/v/123.mp4",
        "https://93.184.216.34/v.mp4",
        "https://[2606:4700:4700::1111]/v.mp4",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_public_urls_are_allowed(url: str, allow_loopback: bool) -> None:
    check_output_url(url, allow_loopback=allow_loopback, resolve=RESOLVER)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765/v1/videos/x/content", "http://localhost:8765/v.mp4", "http://[::1]/v.mp4"]
)
def test_loopback_is_allowed_only_for_a_loopback_provider(url: str) -> None:
    check_output_url(url, allow_loopback=True, resolve=RESOLVER)
    with pytest.raises(OutputInvalidError, match="a loopback address"):
        check_output_url(url, allow_loopback=False, resolve=RESOLVER)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/", "a cloud metadata address"),
        ("http://169.254.170.2/v2/credentials", "a cloud metadata address"),
        ("http://metadata.example.com/", "a cloud metadata address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_link_local_and_metadata_addresses_are_always_refused(url: str, reason: str, allow_loopback: bool) -> None:
    with pytest.raises(OutputInvalidError, match=reason) as caught:
        check_output_url(url, allow_loopback=allow_loopback, resolve=RESOLVER)
    assert "refusing to download from it" in caught.value.message


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://10.1.2.3/v.mp4", "10.1.2.3"),
        ("http://192.168.0.10/v.mp4", "192.168.0.10"),
        ("http://[fd12:3456::1]/v.mp4", "fd12:3456::1"),
        ("https://sneaky.example.com/v.mp4", "sneaky.example.com"),
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_private_addresses_are_refused_naming_the_host(url: str, host: str, allow_loopback: bool) -> None:
    with pytest.raises(OutputInvalidError, match="a private") as caught:
        check_output_url(url, allow_loopback=allow_loopback, resolve=RESOLVER)
    assert f"host {host!r}" in caught.value.message


@pytest.mark.parametrize("url", ["ftp://cdn.example.com/v.mp4", "file:///etc/passwd", "https:///v.mp4"])
def test_other_schemes_and_hostless_urls_are_refused(url: str) -> None:
    with pytest.raises(OutputInvalidError, match="refusing to download it"):
        check_output_url(url, allow_loopback=True, resolve=RESOLVER)


def test_a_host_that_does_not_resolve_is_retryable() -> None:
    with pytest.raises(ProviderUnavailableError, match=re.escape("'gone.example.com' does not resolve")):
        check_output_url("https://gone.example.com/v.mp4", allow_loopback=False, resolve=RESOLVER)
