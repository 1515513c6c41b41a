"""Tornado handlers that carry sessions over HTTP and WebSocket."""
