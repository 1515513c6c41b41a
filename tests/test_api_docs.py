"""Every public name, and every public member of a public class, has a docstring.

Public: what ``__all__`` of ``tornad_io``, ``tornad_io.adapter`` (the adapter
seam), ``tornad_io.socket_io``, ``tornad_io.cluster`` (re-exported by
``tornad_io.redis_adapter``), ``tornad_io.admin`` and ``tornad_io.events`` list, and
the members of those classes not starting with ``_``, instance attributes
included. A member is documented by its docstring (an override may inherit
its base's), an attribute by a ``#:`` comment (what Sphinx reads) or by an
``:ivar name:`` / ``:cvar name:`` field of its class's docstring. Members
that a class takes from outside the package (``dict``, ``Exception``,
Tornado) are not ours to document.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import types
from typing import Any, Iterator

import pytest
from sphinx.pycode import ModuleAnalyzer

MODULES = (
    "tornad_io",
    "tornad_io.adapter",
    "tornad_io.socket_io",
    "tornad_io.cluster",
    "tornad_io.redis_adapter",
    "tornad_io.admin",
    "tornad_io.events",
)


def public_names() -> Iterator[tuple[str, str, Any]]:
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not name.startswith("__"):
                yield module_name, name, getattr(module, name)


def attribute_docs(module_name: str) -> dict[tuple[str, str], list[str]]:
    return ModuleAnalyzer.for_module(module_name).find_attr_docs()


def field_documented(cls: type, name: str) -> bool:
    doc = cls.__dict__.get("__doc__") or ""
    return f":ivar {name}:" in doc or f":cvar {name}:" in doc or f":var {name}:" in doc


def instance_attributes(cls: type) -> set[str]:
    """Names assigned as ``self.<name>`` in the class's own methods."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return set()
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                names.add(target.attr)
    return names


def ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "tornad_io" or cls.__module__ == __name__


def undocumented_members(cls: type) -> list[str]:
    missing: list[str] = []
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:
        if ours(klass):
            names |= {n for n in instance_attributes(klass) if not n.startswith("_")}
    if getattr(cls, "__total__", None) is not None:  # a TypedDict: its keys are ServerOptions' fields
        names -= set(cls.__annotations__)
    for name in sorted(names):
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is not None and not ours(owner):
            continue
        value = owner.__dict__[name] if owner is not None else None
        if isinstance(value, (types.FunctionType, classmethod, staticmethod, property)):
            if inspect.getdoc(getattr(cls, name)):
                continue
        documenters = [k for k in cls.__mro__ if ours(k)]
        if any(
            (k.__qualname__, name) in attribute_docs(k.__module__) or field_documented(k, name) for k in documenters
        ):
            continue
        missing.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return missing


NAMES = list(public_names())


@pytest.mark.parametrize(("module_name", "name", "value"), NAMES, ids=[f"{m}.{n}" for m, n, _ in NAMES])
def test_public_name_is_documented(module_name: str, name: str, value: Any) -> None:
    if inspect.isclass(value) or inspect.isfunction(value):
        own = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
        assert (own or "").strip(), f"{module_name}.{name} has no docstring"
    else:  # a constant or a type alias: a "#:" comment where it is defined
        module = importlib.import_module(module_name)
        defined_in = {module_name}
        if module_name == "tornad_io":
            defined_in = {m.__name__ for m in vars(module).values() if isinstance(m, types.ModuleType)}
            defined_in |= {"tornad_io.adapter"}
        assert any(("", name) in attribute_docs(m) for m in defined_in), f"{module_name}.{name} has no #: comment"
    if inspect.isclass(value):
        missing = undocumented_members(value)
        assert not missing, "undocumented: " + ", ".join(missing)


class _Sample:
    """A class with one documented public member of each kind and one undocumented."""

    #: documented
    documented = 1
    bare = 2

    def __init__(self) -> None:
        #: documented
        self.documented_instance = 3
        self.instance = 3
        self._private = 4

    def method(self) -> None:
        pass

    def documented_method(self) -> None:
        """Documented."""

    @property
    def prop(self) -> int:
        return 1


def test_the_check_finds_what_it_looks_for() -> None:
    """The walk sees public members of every kind (so an empty result above means something)."""
    assert undocumented_members(_Sample) == [
        f"{__name__}._Sample.{name}" for name in ("bare", "instance", "method", "prop")
    ]
