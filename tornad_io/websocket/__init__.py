"""WebSocket pieces: the RFC 6455 frame codec (``frames``, sans-IO) and the original API's Flash policy server."""
