"""Value: an immutable record of named fields, as ``@dataclass(frozen=True, slots=True)`` makes.

The types a look-up builds (Capture, TextRecord, ObjectInfo) are written on
this small base instead of dataclasses: `import dataclasses` imports inspect
(and ast, dis, tokenize), ~7 ms of a look-up that should take under 50 ms in
all. A subclass names its fields in ``__slots__`` (in order) and their defaults
in ``DEFAULTS``; it gets the constructor (positional or by name), equality and
hash over the fields (only with its own class), repr, pickling, ``replace``
and ``as_dict``. tests/test_values.py holds it to dataclasses' behaviour.
"""

from __future__ import annotations


class Value:
    __slots__ = ()
    DEFAULTS: dict = {}

    def __init__(self, *args, **kwargs):
        names = type(self).__slots__
        cls = type(self).__name__
        if len(args) > len(names):
            raise TypeError(f"{cls}() takes {len(names)} arguments but {len(args)} were given")
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{cls}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{cls}() got multiple values for argument {name!r}")
            values[name] = value
        for name in names:
            if name in values:
                value = values[name]
            elif name in self.DEFAULTS:
                value = self.DEFAULTS[name]
            else:
                raise TypeError(f"{cls}() missing required argument: {name!r}")
            object.__setattr__(self, name, value)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in type(self).__slots__)

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self):
        return hash(self._values())

    def __repr__(self) -> str:
        inside = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__slots__)
        return f"{type(self).__name__}({inside})"

    def __reduce__(self):
        return type(self), self._values()

    def replace(self, **changes):
        """A copy with ``changes`` (dataclasses.replace)."""
        values = dict(zip(type(self).__slots__, self._values()))
        values.update(changes)
        return type(self)(**values)

    def as_dict(self) -> dict:
        return dict(zip(type(self).__slots__, self._values()))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls.__slots__)
