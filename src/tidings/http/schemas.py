"""The base of every request and answer body: camelCase on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    # Unknown request fields are ignored, as the providers Tidings stands in for do,
    # so clients written for the v4 contract keep working when they send extras.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
