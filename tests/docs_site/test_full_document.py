"""The whole app's document: sections in the documentation's order whatever order
routes are matched in, and bodies parsed outside FastAPI still documented."""

from __future__ import annotations

import httpx

from tidings.app import DOC_SECTIONS


async def test_sections_keep_their_order_and_cover_every_operation(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert [tag["name"] for tag in doc["tags"]] == list(DOC_SECTIONS)
    used = {
        tag
        for operations in doc["paths"].values()
        for operation in operations.values()
        if isinstance(operation, dict)
        for tag in operation.get("tags", [])
    }
    assert used <= set(DOC_SECTIONS)


async def test_bulk_bodies_are_documented(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for path, model in [
        ("/api/v4/sms/bulk", "SmsBulkRequest"),
        ("/api/v4/email/bulk", "EmailBulkRequest"),
        ("/api/v4/whatsapp/bulk", "WhatsAppBulkRequest"),
    ]:
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert "recipients" in schemas[model]["properties"]
    assert schemas["BulkRecipient"]["required"] == ["to"]
