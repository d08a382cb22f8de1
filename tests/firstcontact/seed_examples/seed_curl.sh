# The seed page's cURL example. Changed: the base URL ($BASE), the login ($USERNAME,
# $PASSWORD), the chat id; <token> is filled in from the first answer.
set -eu

TOKEN=$(curl -s -X POST \
  $BASE/api/v4/auth/token \
  -H "Content-Type: application/json" \
  -d "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# Use the token:
curl -s -X POST \
  $BASE/api/v4/whatsapp/chats/393331234567/message \
  -H "Authorization: Bearer $TOKEN" \
  -d '{"body":"Hello!"}'

# Step 3 of the page: receive events.
curl -s -X POST \
  $BASE/api/v4/webhooks/create \
  -H "Authorization: Bearer $TOKEN" \
  -d '{"url": "https://your-app.com/hook"}'
