"""The provider kinds an operator can configure, with their typed settings.

Checked by ``tidings providers set`` before anything is stored; the runtime
registers how to build each kind (:func:`tidings.runtime.build_registry`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

CHANNELS = ("whatsapp", "sms", "email")


class ProviderConfigError(ValueError):
    pass


class SimulatorConfig(BaseModel):
    """The simulator takes no settings. It lets a production account be wired to the
    simulated providers, explicitly, for staging and load tests."""

    model_config = ConfigDict(extra="forbid")


CONFIG_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    (channel, "simulator"): SimulatorConfig for channel in CHANNELS
}


def kinds(channel: str) -> list[str]:
    return sorted(key for (kind_channel, key) in CONFIG_MODELS if kind_channel == channel)


def validate_config(channel: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    model = CONFIG_MODELS.get((channel, kind))
    if model is None:
        known = ", ".join(kinds(channel)) or "none"
        raise ProviderConfigError(f"no {channel} provider kind {kind!r} (known: {known})")
    try:
        return model.model_validate(config).model_dump(mode="json")
    except ValidationError as error:
        raise ProviderConfigError(str(error)) from None
