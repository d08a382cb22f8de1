"""The ``whatsapp_cloud`` kind's config (spec section 13): which WhatsApp Business
phone number and business account, the credentials Meta gave, and the Graph API
version and address to speak to.

The Graph API version defaults to ``v25.0`` (research notes section 4: v26.0 is the
newest, v25.0 is available until 2028-07-29, v20.0 is already dead); the app's
webhook version, chosen in Meta's App Dashboard, should be kept in step with it,
since the status payload changed shape in v24.0.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from tidings.providers.registry import KindConfig

DEFAULT_API_VERSION = "v25.0"
DEFAULT_BASE_URL = "https://graph.facebook.com"
# Meta's default throughput of a registered number (messages a second, all types).
DEFAULT_MESSAGES_PER_SECOND = 80.0


class WhatsAppCloudConfig(KindConfig):
    phone_number_id: str = Field(pattern=r"^[0-9]{1,32}$")
    business_account_id: str = Field(pattern=r"^[0-9]{1,32}$")
    access_token: SecretStr
    app_secret: SecretStr
    verify_token: SecretStr
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^v[1-9][0-9]?\.[0-9]$")
    base_url: str = Field(default=DEFAULT_BASE_URL, max_length=200)
    messages_per_second: float = Field(default=DEFAULT_MESSAGES_PER_SECOND, gt=0, le=10_000)

    @field_validator("access_token", "app_secret", "verify_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http(s) URL, such as https://graph.facebook.com")
        return value.rstrip("/")
