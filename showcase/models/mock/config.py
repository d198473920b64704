"""The mock team's settings: a dialect, a pace, a fault; each checked with a message."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from showcase.core.errors import ShowcaseError

DIALECTS = ("vllm", "llamacpp", "plain")
FAULTS = ("none", "http_error", "error_in_stream", "reset", "no_done", "malformed", "split",
          "stall", "huge")
MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
KEEPALIVE_IDLE_S = 5.0  # uvicorn's default, which vLLM keeps: idle connections get closed
SPLIT_PAUSE_S = 0.001

_NOT_OVERRIDABLE = frozenset({"api_key", "seed"})


class MockConfigError(ShowcaseError):
    """A mock team setting is out of range; ``field`` names the MockConfig field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


@dataclass(slots=True)
class MockConfig:
    """How a mock team answers. Times are in milliseconds.

    ``itl_ms`` is the gap between chunks, which is the gap between tokens when
    ``chunk_tokens`` is 1. Mid-stream faults happen once ``fault_after`` tokens are out (at
    a chunk boundary), or at the end of a shorter answer. A running server reads its
    config at every request, so a test may change it between requests.
    """

    model: str = "mock-model"
    dialect: str = "vllm"
    ttft_ms: float = 200.0
    itl_ms: float = 20.0
    jitter_ms: float = 0.0
    tokens: int = 64
    chunk_tokens: int = 1
    error_rate: float = 0.0
    stall_after: int | None = None
    fault: str = "none"
    fault_after: int = 3
    status: int = 500
    api_key: str | None = None
    seed: int = 0
    accuracy: float = 1.0  # share of benchmark items answered right (with an answer key)
    usage: bool = True  # False: never sends usage (nor timings), as some servers do

    def validate(self) -> None:
        """Raise :class:`MockConfigError` for the first field that cannot be used."""
        if not isinstance(self.model, str) or not self.model:
            raise MockConfigError("model", "must be a non-empty string")
        for name, allowed in (("dialect", DIALECTS), ("fault", FAULTS)):
            if getattr(self, name) not in allowed:
                raise MockConfigError(name, f"must be one of {', '.join(allowed)}, "
                                            f"not {getattr(self, name)!r}")
        for name in ("ttft_ms", "itl_ms", "jitter_ms"):
            value = getattr(self, name)
            if not is_number(value) or not 0 <= value < math.inf:
                raise MockConfigError(name, f"must be a number of milliseconds >= 0, not {value!r}")
        for name in ("error_rate", "accuracy"):
            value = getattr(self, name)
            if not is_number(value) or not 0 <= value <= 1:
                raise MockConfigError(name, f"must be between 0 and 1, not {value!r}")
        for name, low in (("tokens", 0), ("chunk_tokens", 1), ("fault_after", 0),
                          ("stall_after", 0)):
            value = getattr(self, name)
            if not (value is None and name == "stall_after") and (
                    not is_int(value) or value < low):
                raise MockConfigError(name, f"must be a whole number >= {low}, not {value!r}")
        if not is_int(self.status) or not 400 <= self.status <= 599:
            raise MockConfigError("status", f"must be an HTTP error status (400 to 599), "
                                            f"not {self.status!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise MockConfigError("api_key", "must be a non-empty string")
        if not isinstance(self.usage, bool):
            raise MockConfigError("usage", f"must be true or false, not {self.usage!r}")
        if not is_int(self.seed):
            raise MockConfigError("seed", f"must be a whole number, not {self.seed!r}")

    def with_overrides(self, overrides: object) -> MockConfig:
        """This config with a request's ``"mock"`` object applied (all fields but api_key, seed)."""
        if not isinstance(overrides, dict):
            raise MockConfigError("mock", "must be an object of mock settings")
        allowed = {f.name for f in dataclasses.fields(self)} - _NOT_OVERRIDABLE
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise MockConfigError("mock", f"has unknown settings {', '.join(map(repr, unknown))} "
                                          f"(known: {', '.join(sorted(allowed))})")
        config = dataclasses.replace(self, **overrides)
        try:
            config.validate()
        except MockConfigError as exc:
            raise MockConfigError(f"mock.{exc.field}", exc.problem) from None
        return config


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


