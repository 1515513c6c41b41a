"""Socket.IO v5: packets, namespaces, sockets, rooms and acknowledgements."""
