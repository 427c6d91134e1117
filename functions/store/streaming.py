"""Stream a provider's finished video into the user's S3 bucket, verifying it on the way.

The promise: after ``stream_to_s3`` the object at ``key`` is either the complete, verified video or absent.
Nothing partial ever becomes visible:

- status, content type, Content-Length and the MP4 signature are checked before anything is sent to S3;
- the body goes to S3 through boto3's managed transfer (as ``upload_fileobj`` uses it) over a read-only,
  non-seekable wrapper that counts, limits and hashes as it is read. The transfer completes the multipart
  upload (or sends the single PutObject of a video smaller than one part) only after ``read`` returned
  end-of-stream, and the wrapper raises instead of returning end-of-stream when the body was cut short. On
  any exception the transfer aborts its multipart upload before its result is raised. (The managed transfer
  rather than our own multipart calls: it already overlaps reading with concurrent part uploads, retries
  parts, and aborts.)

Memory is bounded whatever the video's size: the transfer holds at most ``UPLOAD_CONCURRENCY + 1`` parts
(uploading or queued), plus the part being read while its 1 MiB blocks are joined. With 8 MiB parts the peak
is about 54 MB above the process's resting size (benchmarks/store_streaming.py, 512 MiB video).

Never log the request headers: for CometAPI's ``/content`` endpoint they carry the API key. Messages name the
host only, never the full URL (signed URLs carry a signature in their query string).
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

import requests
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import ReadTimeoutError

from functions.common.errors import (
    OutputExpiredError,
    OutputInvalidError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from functions.common.url_safety import Resolver, is_public_address, resolve_host
from functions.providers.http import retry_after_seconds

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
"""S3 refuses parts smaller than this, except the last one."""
MAX_PARTS = 10_000
UPLOAD_CONCURRENCY = 2
READ_BLOCK = 1 * MIB
"""How much is read from the socket at a time: also the granularity of the size limit and progress counts."""
SIGNATURE_BYTES = 12
MAX_REDIRECTS = 5

EXPIRED_STATUSES = frozenset({403, 404, 410})
ACCEPTED_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", ""})
"""Generic types accepted (and stored as video/mp4) besides video/*: S3 and other blob stores serve objects
uploaded without a type as binary/octet-stream; the MP4 signature check is what really identifies the file."""
DEFAULT_CONTENT_TYPE = "video/mp4"

CLOUD_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # EC2/Lambda instance metadata (also covered by link-local)
        ipaddress.ip_address("169.254.170.2"),  # ECS task metadata (link-local too)
        ipaddress.ip_address("fd00:ec2::254"),  # EC2 instance metadata over IPv6 (a unique-local address)
    }
)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")

_NO_METADATA: Mapping[str, str] = MappingProxyType({})

UrlGuard = Callable[[str], None]
"""Called with every URL before it is fetched (redirect targets included); raises to refuse it."""


@dataclass(frozen=True)
class StoredObject:
    """One video, complete and verified, in S3."""

    bucket: str
    key: str
    bytes: int
    sha256: str
    content_type: str


# --- where we may download from --------------------------------------------------------------------------


def check_output_url(url: str, *, allow_loopback: bool, resolve: Resolver = resolve_host) -> None:
    """Refuse a provider output URL that points into our own network.

    The URL is downloaded as the provider gave it (http or https), except that link-local and cloud metadata
    addresses are always refused, loopback is allowed only with ``allow_loopback`` (the configured provider
    base URL is itself loopback: local testing), and other non-public addresses are refused. Every address
    the host resolves to is checked. Raises OutputInvalidError naming the host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutputInvalidError(
            f"the provider's output URL must be http:// or https:// (got scheme {parts.scheme or 'none'!r}); "
            "refusing to download it"
        )
    host = parts.hostname
    if not host:
        raise OutputInvalidError("the provider's output URL has no host name; refusing to download it")
    literal = _ip_literal(host)
    try:
        addresses = [str(literal)] if literal is not None else resolve(host)
    except (OSError, UnicodeError) as exc:
        raise ProviderUnavailableError(
            f"the provider's output host {host!r} does not resolve right now; the download will be retried",
            details={"host": host},
        ) from exc
    if not addresses:
        raise ProviderUnavailableError(
            f"the provider's output host {host!r} resolved to no address; the download will be retried",
            details={"host": host},
        )
    for address in addresses:
        refusal = _refusal(address, allow_loopback=allow_loopback)
        if refusal:
            raise OutputInvalidError(
                f"the provider's output URL points at host {host!r}, which resolves to {address}, {refusal}; "
                "refusing to download from it",
                details={"host": host, "address": address},
            )


def _refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be downloaded from, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in NAT64_PREFIX:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in CLOUD_METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_loopback:
        if allow_loopback:
            return None
        return "a loopback address (allowed only when the provider base URL is itself loopback, for local testing)"
    if not is_public_address(str(ip)):
        return "a private (non-public) address"
    return None


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


# --- streaming into S3 -----------------------------------------------------------------------------------


def transfer_config(part_size: int) -> TransferConfig:
    """The managed-transfer settings: parts of ``part_size``, a few in flight, a few buffered, no more."""
    config = TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=part_size,
        max_concurrency=UPLOAD_CONCURRENCY,
        use_threads=True,
        # The CRT transfer client ignores most of these settings; keep the behaviour (and memory) we measured.
        preferred_transfer_client="classic",
    )
    # The default (10) lets a fast download buffer 10 parts ahead of a slow upload: 80 MB with 8 MB parts.
    config.max_in_memory_upload_chunks = UPLOAD_CONCURRENCY + 1
    return config


def stream_to_s3(
    url: str,
    *,
    headers: Mapping[str, str],
    s3_client: S3Client,
    bucket: str,
    key: str,
    max_bytes: int,
    metadata: Mapping[str, str] = _NO_METADATA,
    session: requests.Session | None = None,
    part_size: int = 8 * MIB,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    url_guard: UrlGuard | None = None,
) -> StoredObject:
    """Download ``url`` into ``s3://bucket/key`` with bounded memory, verifying the video as it streams.

    ``headers`` go to the first URL and to redirect targets on the same origin only. ``url_guard`` (for
    example ``functools.partial(check_output_url, allow_loopback=...)``) vets every redirect target; the
    caller checks ``url`` itself before calling.

    Raises OutputExpiredError (HTTP 403/404/410), ProviderUnavailableError (5xx, connection failures, a body
    cut short: retry from scratch onto the same key), ProviderRateLimitedError (429) or OutputInvalidError
    (not a video, too large, another status). On any failure no object is written at ``key``.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
    if max_bytes > part_size * MAX_PARTS:
        raise ValueError(f"max_bytes {max_bytes} needs more than {MAX_PARTS} parts of {part_size} bytes")
    http = session if session is not None else requests.Session()
    try:
        response = _fetch(http, url, headers, timeout=(connect_timeout, read_timeout), url_guard=url_guard)
        with response:
            host = urlsplit(response.url).hostname or "the provider"
            content_type = _check_answer(response, host, max_bytes)
            body = _VerifiedBody(
                response.raw,
                host=host,
                content_length=_content_length(response),
                encoded=response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"),
                max_bytes=max_bytes,
                read_timeout=read_timeout,
            )
            _check_signature(body.peek(SIGNATURE_BYTES), host)
            # What s3_client.upload_fileobj does, keeping the future: once an S3 call has failed, the transfer
            # would otherwise go on downloading (and discarding) the rest of the video before it gives up.
            with create_transfer_manager(s3_client, transfer_config(part_size)) as transfer:
                upload = transfer.upload(
                    cast("IO[Any]", body),  # it has read/readable/seekable, all the transfer uses
                    bucket,
                    key,
                    extra_args={"ContentType": content_type, "Metadata": dict(metadata)},
                )
                body.abandoned = upload.done
                upload.result()
            if not body.finished:  # cannot happen with boto3's transfer; a guard so a change there is loud
                s3_client.delete_object(Bucket=bucket, Key=key)
                raise RuntimeError("the transfer finished before the download reached its end")
    finally:
        if session is None:
            http.close()
    logger.info(
        "stored video",
        extra={"bucket": bucket, "key": key, "bytes": body.received, "sha256": body.sha256, "host": host},
    )
    return StoredObject(bucket, key, body.received, body.sha256, content_type)


def _fetch(
    http: requests.Session,
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: tuple[float, float],
    url_guard: UrlGuard | None,
) -> requests.Response:
    """GET ``url``, following redirects ourselves so each target is vetted and credentials stay on origin."""
    # Ask for the bytes as stored: a compressed answer would make Content-Length count other bytes.
    send_headers = {"Accept-Encoding": "identity", **headers}
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        host = urlsplit(current).hostname or "the provider"
        try:
            response = http.get(current, headers=send_headers, stream=True, timeout=timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise ProviderUnavailableError(
                f"the provider's download server {host} did not answer in time; the download will be retried",
                details={"host": host},
            ) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise ProviderUnavailableError(
                f"could not connect to the provider's download server {host}; the download will be retried",
                details={"host": host},
            ) from exc
        except requests.RequestException as exc:
            raise OutputInvalidError(
                f"the provider's output URL for host {host} cannot be fetched ({type(exc).__name__})",
                details={"host": host},
            ) from exc
        if not response.is_redirect:
            return response
        target = urljoin(current, response.headers["Location"])
        response.close()
        if url_guard is not None:
            url_guard(target)
        if _origin(target) != _origin(current):
            send_headers = {"Accept-Encoding": "identity"}  # never forward the caller's headers to another host
        current = target
    raise OutputInvalidError(
        f"the provider's download link redirected more than {MAX_REDIRECTS} times; refusing to follow it",
        details={"host": urlsplit(url).hostname},
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _check_answer(response: requests.Response, host: str, max_bytes: int) -> str:
    """Status, content type and declared size; the content type to store. Raises before anything is read."""
    status = response.status_code
    if status in EXPIRED_STATUSES:
        raise OutputExpiredError(
            f"the provider's download link has expired (HTTP {status} from {host}); generate the video again "
            "(providers keep finished videos only for a limited time)",
            details={"host": host, "status": status},
        )
    if status == 429:
        raise ProviderRateLimitedError(
            f"the provider's download server {host} is rate limiting (HTTP 429); the download will be retried",
            retry_after=retry_after_seconds(response.headers),
            details={"host": host, "status": status},
        )
    if status >= 500:
        raise ProviderUnavailableError(
            f"the provider's download server {host} failed (HTTP {status}); the download will be retried",
            details={"host": host, "status": status},
        )
    if status != 200:
        raise OutputInvalidError(
            f"the provider's download link answered HTTP {status} from {host} instead of the video",
            details={"host": host, "status": status},
        )
    declared = response.headers.get("Content-Type", "")
    media_type = declared.split(";", 1)[0].strip().lower()
    if not media_type.startswith("video/") and media_type not in ACCEPTED_TYPES:
        raise OutputInvalidError(
            f"the provider's download link at {host} served {declared!r} instead of a video (expected video/* "
            "or application/octet-stream); it is probably an error page",
            details={"host": host, "content_type": declared},
        )
    length = _content_length(response)
    if length is not None and length > max_bytes:
        raise OutputInvalidError(
            f"the video at {host} is {length} bytes, more than the {max_bytes}-byte limit; not stored",
            details={"host": host, "bytes": length, "max_bytes": max_bytes},
        )
    return media_type if media_type.startswith("video/") else DEFAULT_CONTENT_TYPE


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def _check_signature(prefix: bytes, host: str) -> None:
    """An MP4 (ISO base media file) starts with a box whose type, at bytes 4..8, is ``ftyp``."""
    if prefix[4:8] != b"ftyp":
        raise OutputInvalidError(
            f"the file downloaded from {host} is not an MP4 video (no 'ftyp' box at byte 4; it starts with "
            f"{prefix[:SIGNATURE_BYTES]!r}); not stored",
            details={"host": host},
        )


class _VerifiedBody:
    """A read-only, non-seekable file over the HTTP body that counts, hashes and checks as it is read.

    ``read(n)`` returns exactly ``n`` bytes until the end (the transfer relies on full reads to size its parts),
    and at the end raises instead of returning ``b""`` when fewer bytes than Content-Length arrived.
    """

    def __init__(
        self,
        raw: Any,
        *,
        host: str,
        content_length: int | None,
        encoded: bool,
        max_bytes: int,
        read_timeout: float,
    ) -> None:
        self._raw = raw
        self._host = host
        self._content_length = content_length
        self._encoded = encoded
        self._max_bytes = max_bytes
        self._read_timeout = read_timeout
        self._hash = hashlib.sha256()
        self._pending = b""
        self.received = 0
        self.finished = False
        self.abandoned: Callable[[], bool] = lambda: False
        """True once the upload has failed: reading on would only download what can no longer be stored."""

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def peek(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer if the body is shorter), kept to be returned again by ``read``."""
        while len(self._pending) < size and not self.finished:
            self._pending += self._pull(READ_BLOCK)
        return self._pending[:size]

    def read(self, size: int | None = -1) -> bytes:
        wanted = -1 if size is None or size < 0 else size
        blocks: list[bytes] = []
        got = 0
        if self._pending:
            head = self._pending if wanted < 0 else self._pending[:wanted]
            self._pending = self._pending[len(head) :]
            blocks.append(head)
            got = len(head)
        while (wanted < 0 or got < wanted) and not self.finished:
            block = self._pull(READ_BLOCK if wanted < 0 else min(READ_BLOCK, wanted - got))
            if block:
                blocks.append(block)
                got += len(block)
        return b"".join(blocks)

    def _pull(self, amount: int) -> bytes:
        """One block from the socket, counted, limited and hashed; ``b""`` (after the checks) at the end."""
        if self.abandoned():
            # Never seen by the caller: the transfer keeps the S3 error that made it fail first.
            raise RuntimeError("the upload to S3 failed; download abandoned")
        try:
            block: bytes = self._raw.read(amount, decode_content=True)
        except (Urllib3HTTPError, http.client.HTTPException, requests.RequestException, OSError) as exc:
            raise self._cut_short(exc) from exc
        if not block:
            self._check_complete()
            self.finished = True
            return b""
        self.received += len(block)
        if self.received > self._max_bytes:
            raise OutputInvalidError(
                f"the video from {self._host} is larger than the {self._max_bytes}-byte limit (more than "
                f"{self._max_bytes} bytes received); not stored",
                details={"host": self._host, "max_bytes": self._max_bytes},
            )
        self._hash.update(block)
        return block

    def _check_complete(self) -> None:
        if self._content_length is None:
            return
        # Content-Length counts the bytes on the wire; they differ from ours only if the server compressed.
        arrived = int(self._raw.tell()) if self._encoded else self.received
        if arrived < self._content_length:
            raise self._cut_short(None)

    def _cut_short(self, cause: BaseException | None) -> ProviderUnavailableError:
        if isinstance(cause, ReadTimeoutError | TimeoutError):
            reason = f"no data for {self._read_timeout:g} s"
        elif cause is None:
            reason = "the connection closed early"
        else:
            reason = "the connection broke"
        received = int(self._raw.tell()) if self._encoded else self.received  # in Content-Length's terms
        of_total = f" of {self._content_length}" if self._content_length is not None else ""
        return ProviderUnavailableError(
            f"the download from {self._host} was cut short after {received}{of_total} bytes ({reason}); "
            "the download is retried from the start a few times before the job fails",
            details={"host": self._host, "received": received, "expected": self._content_length},
        )
