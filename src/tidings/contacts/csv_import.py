"""CSV import of contacts, streamed: bytes in, rows validated, chunks written.

The file is decoded incrementally (UTF-8; a BOM is skipped; an undecodable byte
rejects its row as ``invalid_encoding``) and cut into records at line ends
outside quoted fields, so that a quoted field may hold line breaks and every
record keeps the line it starts on in the file (the header is line 1). Records
go to the csv module a batch at a time; validated rows are written
:data:`CHUNK_ROWS` at a time by the ``write`` function given (one transaction
each), so memory holds one chunk whatever the file's size.

The header row names the columns: ``phone`` and/or ``email`` (any case) and any
others, which become variables (names as for the API; a column with an empty
name is ignored). Empty cells set nothing: a row that updates a contact leaves
its other variables as they were.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from tidings.contacts.fields import (
    MAX_VARIABLES,
    Rejection,
    check_email,
    check_phone,
    check_variable_name,
    check_variables,
)
from tidings.contacts.upsert import ContactInput, Upserted
from tidings.core.errors import FieldError, Unprocessable

CHUNK_ROWS = 5_000
# Lines handed to the csv module at once.
PARSE_LINES = 2_000
# Longer than this, a record is taken to have a quote that is never closed.
MAX_RECORD_CHARS = 1_048_576

WriteChunk = Callable[[list[ContactInput]], Awaitable[list[Upserted | Rejection]]]


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    code: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True, slots=True)
class _Columns:
    phone: int | None
    email: int | None
    variables: tuple[tuple[int, str], ...]
    width: int


def _header_error(message: str, code: str) -> Unprocessable:
    return Unprocessable(message, code=code, errors=[FieldError("file", code, message)])


def parse_header(fields: list[str]) -> _Columns:
    """The columns, or a 422 that names what is wrong with the header row."""
    phone = email = None
    variables: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(fields):
        name = raw.strip()
        if not name:
            continue
        lowered = name.lower()
        key = lowered if lowered in ("phone", "email") else name
        if key in seen:
            raise _header_error(
                f"The header names the column {name!r} twice.", "invalid_csv_header"
            )
        seen.add(key)
        if lowered == "phone":
            phone = index
        elif lowered == "email":
            email = index
        else:
            bad = check_variable_name(name, "file")
            if bad is not None:
                raise _header_error(
                    f"Header column {index + 1}: {bad.reason}", "invalid_csv_header"
                )
            variables.append((index, name))
    if phone is None and email is None:
        found = ", ".join(repr(f.strip()) for f in fields if f.strip()) or "nothing"
        raise _header_error(
            "The first line must be a header row with a 'phone' or an 'email' column "
            f"(or both); it has {found}.",
            "missing_contact_column",
        )
    if len(variables) > MAX_VARIABLES:
        raise _header_error(
            f"The file has {len(variables)} variable columns; a contact has at most "
            f"{MAX_VARIABLES} variables.",
            "too_many_columns",
        )
    return _Columns(phone, email, tuple(variables), len(fields))


async def records(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, list[str] | RowError]]:
    """(line the record starts on, its fields or why it cannot be read); blank
    lines are skipped."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    tail = ""
    line_no = 0  # lines seen so far
    pending: list[str] = []  # lines of a record whose quoted field is still open
    pending_chars = 0
    quoted = False
    batch: list[str] = []
    batch_start = 1

    async def lines() -> AsyncIterator[str]:
        nonlocal tail
        async for chunk in chunks:
            text = tail + decoder.decode(chunk)
            parts = text.split("\n")
            tail = parts.pop()
            for part in parts:
                yield part + "\n"
        text = tail + decoder.decode(b"", final=True)
        tail = ""
        if text:
            yield text

    async for line in lines():
        line_no += 1
        if not pending and not batch:
            batch_start = line_no
        pending.append(line)
        pending_chars += len(line)
        if line.count('"') % 2:
            quoted = not quoted
        if quoted and pending_chars <= MAX_RECORD_CHARS:
            continue
        # A record this long has a quote that is never closed (or a stray quote in an
        # unquoted field): the csv module reads it as it is and says what is wrong.
        quoted = False
        batch.extend(pending)
        pending, pending_chars = [], 0
        if len(batch) >= PARSE_LINES:
            for item in _parse(batch, batch_start):
                yield item
            batch = []
    batch.extend(pending)
    for item in _parse(batch, batch_start):
        yield item


def _parse(lines: list[str], first_line: int) -> Iterator[tuple[int, list[str] | RowError]]:
    reader = csv.reader(lines, strict=True)
    while True:
        start = first_line + reader.line_num
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield start, RowError(start, "malformed_row", f"The row is not valid CSV: {error}.")
            continue
        if fields and any(fields):
            yield start, fields


class CsvImport:
    """One import: feed it the body's bytes with :meth:`run`."""

    def __init__(
        self,
        *,
        write: WriteChunk,
        extra_valid: frozenset[str],
        max_rows: int,
        errors_listed: int = 1_000,
    ) -> None:
        self._write = write
        self._extra_valid = extra_valid
        self._max_rows = max_rows
        self._errors_listed = errors_listed
        self.report = ImportReport()
        self._chunk: list[ContactInput] = []
        self._chunk_lines: list[int] = []

    async def run(self, chunks: AsyncIterator[bytes]) -> ImportReport:
        columns: _Columns | None = None
        async for line, fields in records(chunks):
            if columns is None:
                if isinstance(fields, RowError):
                    raise _header_error(
                        f"The header row is not valid CSV: {fields.reason}", "invalid_csv_header"
                    )
                if line != 1:
                    raise _header_error(
                        "The first line must be the header row; it is blank.",
                        "missing_contact_column",
                    )
                columns = parse_header(fields)
                continue
            self.report.rows += 1
            if isinstance(fields, RowError):
                self._reject(fields)
                continue
            if self.report.rows > self._max_rows:
                self._reject(
                    RowError(
                        line,
                        "too_many_rows",
                        f"A file imports at most {self._max_rows} rows; this one is past that.",
                    )
                )
                continue
            entry = self._row(columns, fields)
            if isinstance(entry, Rejection):
                self._reject(RowError(line, entry.code, entry.reason))
                continue
            self._chunk.append(entry)
            self._chunk_lines.append(line)
            if len(self._chunk) >= CHUNK_ROWS:
                await self._flush()
        if columns is None:
            raise _header_error("The file is empty; it needs a header row.", "empty_file")
        await self._flush()
        self.report.errors.sort(key=lambda error: error.line)
        del self.report.errors[self._errors_listed :]
        return self.report

    def _row(self, columns: _Columns, fields: list[str]) -> ContactInput | Rejection:
        if len(fields) > columns.width and any(f.strip() for f in fields[columns.width :]):
            return Rejection(
                "file",
                "too_many_fields",
                f"The row has {len(fields)} fields; the header names {columns.width}.",
            )
        if any("\ufffd" in value for value in fields):
            return Rejection("file", "invalid_encoding", "The row is not valid UTF-8.")
        width = len(fields)
        phone = (
            fields[columns.phone].strip()
            if columns.phone is not None and columns.phone < width
            else ""
        )
        email = (
            fields[columns.email].strip()
            if columns.email is not None and columns.email < width
            else ""
        )
        checked_phone = check_phone(phone, self._extra_valid) if phone else None
        if isinstance(checked_phone, Rejection):
            return checked_phone
        checked_email = check_email(email) if email else None
        if isinstance(checked_email, Rejection):
            return checked_email
        if checked_phone is None and checked_email is None:
            return Rejection(
                "file", "phone_or_email_required", "The row has neither a phone nor an email."
            )
        variables = {
            name: value
            for index, name in columns.variables
            if index < width and (value := fields[index].strip())
        }
        checked = check_variables(variables)
        if isinstance(checked, Rejection):
            return checked
        return ContactInput(checked_phone, checked_email, checked)

    def _reject(self, error: RowError) -> None:
        self.report.rejected += 1
        errors = self.report.errors
        errors.append(error)
        if len(errors) >= 2 * self._errors_listed + CHUNK_ROWS:
            # Only the earliest lines are listed: those past the limit can never be.
            errors.sort(key=lambda item: item.line)
            del errors[self._errors_listed :]

    async def _flush(self) -> None:
        if not self._chunk:
            return
        outcomes = await self._write(self._chunk)
        for line, outcome in zip(self._chunk_lines, outcomes, strict=True):
            if isinstance(outcome, Upserted):
                if outcome.outcome == "created":
                    self.report.created += 1
                else:
                    self.report.updated += 1
            else:
                self._reject(RowError(line, outcome.code, outcome.reason))
        self._chunk, self._chunk_lines = [], []
