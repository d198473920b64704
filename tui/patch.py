"""Applying an event's patch (protocol 6.1): the console's whole share of the state fold.

The server folds the events; each event message carries the change it makes to the
operator view's state as a JSON Patch (RFC 6902, only ``add``, ``replace`` and ``remove``).
Applying one needs no knowledge of what the event means.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def apply_patch(doc: Any, ops: list[Json]) -> Any:
    """``doc`` with an event's patch applied (RFC 6902 ``add``, ``replace``, ``remove`` on
    JSON Pointer paths), in place where it can be; returns the new document. Raises
    ValueError for an operation that does not fit the document."""
    for op in ops:
        path = str(op.get("path", ""))
        if path == "":
            doc = op.get("value")
            continue
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        target = doc
        try:
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if isinstance(target, list):
                index = len(target) if last == "-" else int(last)
                if op["op"] == "remove":
                    del target[index]
                elif op["op"] == "add":
                    target.insert(index, op["value"])
                else:
                    target[index] = op["value"]
            elif op["op"] == "remove":
                del target[last]
            else:
                target[last] = op["value"]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"patch operation {op!r} does not fit the state") from exc
    return doc
