"""Server options: the keyword arguments of ``Server(...)`` and their checks."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from tornad_io import Server, ServerOptions, ServerOptionsDict


def test_the_typed_dict_lists_every_option_with_its_type() -> None:
    """Adding an option to ServerOptions without ServerOptionsDict (or the reverse) fails here."""
    fields = typing.get_type_hints(ServerOptions)
    fields = {f.name: fields[f.name] for f in dataclasses.fields(ServerOptions)}
    keys = typing.get_type_hints(ServerOptionsDict)
    assert list(keys) == list(fields)  # same names, same order
    assert keys == fields  # same types
    assert ServerOptionsDict.__required_keys__ == frozenset()  # every option is optional


def test_unknown_options_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="unknown server option\\(s\\): pingInterval"):
        Server(pingInterval=25)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"ping_interval": (25, 5)},
            r"option ping_interval must be a number, not tuple: \(25, 5\) \(python-socketio's",
        ),
        ({"ping_timeout": "20"}, r"option ping_timeout must be a number, not str: '20'"),
        ({"max_http_buffer_size": 1e6}, r"option max_http_buffer_size must be an int, not float"),
        ({"max_connections": True}, r"option max_connections must be an int or None, not bool"),
        ({"transports": "websocket"}, r"option transports must be a list or tuple of str, not str"),
        ({"transports": [1]}, r"option transports must be a list or tuple of str"),
        ({"allow_upgrades": "yes"}, r"option allow_upgrades must be a bool, not str"),
        ({"cookie": "io"}, r"option cookie must be a bool or a dict, not str"),
        ({"cors_allowed_origins": 3}, r"option cors_allowed_origins must be None or a str or a list or tuple of str"),
        ({"allow_request": True}, r"option allow_request must be a callable or None, not bool"),
        ({"path": None}, r"option path must be a str, not NoneType"),
    ],
)
def test_wrong_types_are_refused_naming_the_option_and_the_type(options: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Server(**options)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        ServerOptions(**options)  # type: ignore[arg-type]


def test_what_the_checks_let_through() -> None:
    """Values of the annotated types, and the harmless near misses (ints for floats, lists for tuples)."""
    options = ServerOptions(
        ping_interval=1,
        ping_timeout=0.5,
        transports=["websocket"],  # type: ignore[arg-type]
        cors_allowed_origins=lambda origin: origin.endswith(".example"),
        cookie={"name": "sticky"},
        per_message_deflate=True,
        trusted_proxies={"10.0.0.0/8"},  # type: ignore[arg-type]
        http_compression_threshold=None,
        max_connections=10,
        handshake_rate_per_ip=2,
        allow_request=lambda handler: True,
    )
    assert options.transports == ("websocket",)
    assert ServerOptions(cors_allowed_origins=["https://a.example"]).cors_allowed_origins == ["https://a.example"]
    assert ServerOptions(cors_allowed_origins="*").cors_allowed_origins == "*"
