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
