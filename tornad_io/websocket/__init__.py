"""WebSocket-related helpers of the original API (the Flash policy server)."""
