"""A dotted path into a JSON answer (`header.member_id`, `items.0.id`): the one walker that role
probes and durability read-backs share."""

from __future__ import annotations

from typing import Any


class MissingField(KeyError):
    """`path` is not in the document; `part` is where the walk stopped."""

    def __init__(self, path: str, part: str):
        super().__init__(path)
        self.path, self.part = path, part


def field(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise MissingField(path, part)
    return node
