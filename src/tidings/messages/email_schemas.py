"""Request parts an email send and an email bulk request share."""

from __future__ import annotations

from pydantic import Field

from tidings.http.schemas import ApiRequest


class EmailAttachment(ApiRequest):
    filename: str = Field(min_length=1, max_length=255, examples=["invoice.pdf"])
    content_type: str = Field(max_length=127, examples=["application/pdf"])
    content: str = Field(description="Base64 of the file's bytes.", examples=["JVBERi0xLjQK"])


class EmailTracking(ApiRequest):
    opens: bool = True
    clicks: bool = True
