"""``typing``, imported on first use: kernelkit.specs uses it in annotations only.

Listing kernelspecs in a fresh process must not pay for importing typing (about 3 ms,
as much as reading two hundred kernel.json files), yet the annotations of the public
classes must still resolve for ``typing.get_type_hints`` (tools that inspect them, the
public API test). Annotations here are strings (``from __future__ import annotations``)
naming ``typing.Any`` and ``typing.Literal``; the modules bind ``typing`` to
:data:`typing`, which imports the real module the first time an attribute is asked
for, so those strings evaluate to the real objects. Type checkers see the real module.
"""

from __future__ import annotations

__all__ = ["typing"]


class _Typing:
    """Stands for the typing module until an attribute of it is needed."""

    def __getattr__(self, name: str) -> object:
        import typing

        return getattr(typing, name)

    def __repr__(self) -> str:
        return "<typing, imported on first use>"


typing = _Typing()
