"""Engine.IO: sessions, heartbeats and upgrades (the transport-independent engine)."""
