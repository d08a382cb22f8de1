"""The ``file`` field of a ``multipart/form-data`` body, streamed.

Only what a CSV upload needs (RFC 7578): parts are delimited by the boundary,
each with headers; the first part named ``file`` is passed on chunk by chunk as
it arrives, holding back only as many bytes as could be the start of the next
delimiter. Other parts are skipped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from tidings.core.errors import FieldError, Unprocessable

MAX_PART_HEADERS = 16_384
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;]{1,200}))', re.IGNORECASE)
_NAME = re.compile(r'(?:^|;)\s*name\s*=\s*(?:"([^"]*)"|([^\s;]+))', re.IGNORECASE)


def _invalid(message: str, code: str = "invalid_multipart") -> Unprocessable:
    return Unprocessable(message, code=code, errors=[FieldError("file", code, message)])


def boundary_of(content_type: str) -> bytes:
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise _invalid("The multipart/form-data Content-Type has no boundary.")
    return (match.group(1) or match.group(2)).encode("latin-1")


def _part_name(headers: bytes) -> str | None:
    for line in headers.decode("latin-1").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            match = _NAME.search(value.split(";", 1)[1] if ";" in value else "")
            if match is not None:
                return match.group(1) if match.group(1) is not None else match.group(2)
    return None


async def file_field(
    chunks: AsyncIterator[bytes], boundary: bytes, name: str = "file"
) -> AsyncIterator[bytes]:
    """The bytes of the part called ``name``; 422 when there is none or the body
    ends inside it."""
    opening = b"--" + boundary
    closing = b"\r\n" + opening
    buffer = b""
    state = "preamble"
    wanted = False
    source = chunks.__aiter__()
    ended = False

    async def more() -> bool:
        nonlocal buffer, ended
        if ended:
            return False
        try:
            buffer += await source.__anext__()
        except StopAsyncIteration:
            ended = True
            return False
        return True

    while True:
        if state == "preamble":
            at = buffer.find(opening)
            if at < 0:
                buffer = buffer[-len(opening) :]
                if not await more():
                    break
                continue
            buffer = buffer[at + len(opening) :]
            state = "delimiter"
        elif state == "delimiter":
            if len(buffer) < 2 and await more():
                continue
            if buffer.startswith(b"--"):
                break
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > 256 or not await more():
                    raise _invalid("The multipart body is malformed after a boundary.")
                continue
            buffer = buffer[end + 2 :]
            state = "headers"
        elif state == "headers":
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_PART_HEADERS or not await more():
                    raise _invalid("A part of the multipart body has no end to its headers.")
                continue
            wanted = _part_name(buffer[:end]) == name
            buffer = buffer[end + 4 :]
            state = "content"
        else:
            at = buffer.find(closing)
            if at >= 0:
                if wanted:
                    if at:
                        yield buffer[:at]
                    return
                buffer = buffer[at + len(closing) :]
                state = "delimiter"
                continue
            keep = len(closing) - 1
            if wanted and len(buffer) > keep:
                yield buffer[:-keep]
                buffer = buffer[-keep:]
            elif not wanted:
                buffer = buffer[-keep:]
            if not await more():
                raise _invalid("The multipart body ends inside a part.")
    raise _invalid(
        f"The multipart/form-data body has no {name!r} field; send the CSV as 'file'.",
        code="missing_file",
    )
