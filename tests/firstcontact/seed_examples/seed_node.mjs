// The seed page's Node.js example. Changed: the base URL, the login, the chat id.
const BASE = process.env.BASE;
const username = process.env.USERNAME, password = process.env.PASSWORD;

// Authentication
const r = await fetch(
  `${BASE}/api/v4/auth/token`,
  { method: "POST",
    headers: {"Content-Type":"application/json"},
    body: JSON.stringify({username,password}) }
);
const { token } = await r.json();

// Send message
await fetch(`${BASE}/api/v4/whatsapp/chats/393331234567/message`, {
  method: "POST",
  headers: { Authorization: `Bearer ${token}` },
  body: JSON.stringify({ body: "Hello!" })
});

// Step 3 of the page: receive events.
const hook = await fetch(`${BASE}/api/v4/webhooks/create`, {
  method: "POST",
  headers: { Authorization: `Bearer ${token}` },
  body: JSON.stringify({ url: "https://your-app.com/hook" })
});
console.log((await hook.json()).status);
