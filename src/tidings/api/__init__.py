"""The /api/v4 routers: thin layers that parse, call a service and shape the answer."""
