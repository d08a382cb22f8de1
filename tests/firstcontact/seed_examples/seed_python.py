# The seed page's Python example. Changed: the base URL, the login, the chat id.
# Kept as the page writes it (no timeouts, two-space indents), so neither linted nor formatted:
# ruff: noqa: S113
# fmt: off
import os

import requests

BASE = os.environ["BASE"]
username, password = os.environ["USERNAME"], os.environ["PASSWORD"]

# Authentication
r = requests.post(
  f"{BASE}/api/v4/auth/token",
  json={"username": username, "password": password}
)
token = r.json()["token"]

# Send message
requests.post(
  f"{BASE}/api/v4/whatsapp/chats/393331234567/message",
  headers={"Authorization": f"Bearer {token}"},
  json={"body": "Hello!"}
)

# Step 3 of the page: receive events.
hook = requests.post(
  f"{BASE}/api/v4/webhooks/create",
  headers={"Authorization": f"Bearer {token}"},
  json={"url": "https://your-app.com/hook"}
)
print(hook.json()["status"])
