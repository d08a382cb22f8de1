"""Cursor pagination shared by every list endpoint (spec section 1).

Lists are ordered newest first by id (ids sort by creation time); the cursor is
the last id of the page, opaque to clients.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    after: str | None = None


async def page_params(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.", examples=[50]),
    after: str | None = Query(
        None,
        max_length=64,
        description="Cursor from the previous page's nextCursor.",
        examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"],
    ),
) -> PageParams:
    # Async although it awaits nothing: FastAPI runs a plain function dependency in
    # its thread pool, which costs more than the function.
    return PageParams(limit=limit, after=after)


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(populate_by_name=True)

    data: list[T]
    next_cursor: str | None = Field(default=None, alias="nextCursor")


def next_cursor(rows_plus_one: list[T], limit: int, key: str = "id") -> tuple[list[T], str | None]:
    """Given ``limit + 1`` rows, the page and the cursor of the following one."""
    if len(rows_plus_one) > limit:
        page = rows_plus_one[:limit]
        return page, str(getattr(page[-1], key))
    return rows_plus_one, None
