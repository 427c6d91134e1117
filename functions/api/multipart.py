"""multipart/form-data bodies (what the openai SDK sends to POST /v1/videos), parsed with the standard library."""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

from functions.common.errors import InvalidRequestError


@dataclass(frozen=True)
class FilePart:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class FormData:
    fields: list[tuple[str, str]]
    files: list[FilePart]


def parse_multipart(body: bytes, content_type: str) -> FormData:
    """Fields and files of a multipart/form-data body; InvalidRequestError if it is not one."""
    if "boundary=" not in content_type:
        raise InvalidRequestError("the multipart/form-data body has no boundary in its Content-Type")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidRequestError("the body is not valid multipart/form-data")
    fields: list[tuple[str, str]] = []
    files: list[FilePart] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise InvalidRequestError("a multipart part has no name in its Content-Disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None or (part.get_content_type() not in ("text/plain",) and part.get("content-type")):
            files.append(FilePart(name, filename, part.get_content_type(), data))
        else:
            fields.append((name, data.decode(part.get_content_charset() or "utf-8", errors="replace")))
    return FormData(fields, files)
