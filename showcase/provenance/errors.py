"""The provenance check's one error: input it cannot use, named so a person can fix it."""

from __future__ import annotations

from showcase.core.errors import InvalidRequest


class ProvenanceError(InvalidRequest):
    """A model the check cannot read (a missing, truncated or corrupt file, an index that
    names a missing shard) or two models it cannot compare (every shared name has another
    shape, nothing in common); the message names the file or tensor and the problem."""

    code = "provenance"
