"""A posted form whose fields do not validate: the 422 the pages show by their inputs.

The console builds the API's own request models from a form; pydantic's complaints
become the same :class:`~tidings.core.errors.Unprocessable` the services raise, each
field named by its path (``events.2``, ``config.port``), so a page shows both kinds of
error the same way.
"""

from __future__ import annotations

from pydantic import ValidationError

from tidings.core.errors import FieldError, Unprocessable


def invalid_form(error: ValidationError) -> Unprocessable:
    return Unprocessable(
        "The form has invalid fields.",
        errors=[
            FieldError(".".join(str(part) for part in item["loc"]), "invalid_value", item["msg"])
            for item in error.errors()
        ],
    )
