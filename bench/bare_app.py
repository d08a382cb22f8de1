"""The baseline: a bare FastAPI endpoint that parses a small JSON body and answers
JSON, served by the same uvicorn settings as Tidings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    to: str
    body: str


@app.post("/send")
async def send(body: Body) -> dict[str, str]:
    return {"id": "msg_0", "to": body.to, "status": "sent"}
