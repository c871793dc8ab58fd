"""Typed errors raised by domain code.

No module here knows about HTTP: each protocol maps these classes to its own
status codes in one place, and the CLI prints ``error: <message>``.

    FinmaasError
     ├── Invalid                 the caller sent something that breaks a rule
     │    ├── InvalidName        a model or alias name that is not a safe slug
     │    ├── InvalidSignature   a signature document that is not well formed
     │    ├── SchemaMismatch     records or arrays that do not fit a signature
     │    ├── FormatMismatch     an artifact that is not in the format it claims
     │    └── PersonalDataBlocked  a prompt holds personal data its model's policy blocks
     ├── NotFound                no such model, version or alias
     ├── Conflict                the request contradicts the registry's state
     ├── Unauthenticated         no API key, or one that is unknown, revoked or expired
     ├── Forbidden               the principal may not do this (e.g. upload pickle)
     ├── RateLimited             over a rate limit, a quota or a concurrency cap
     ├── ArtifactCorrupted       stored bytes no longer match their sha256 digest
     ├── PredictorFailed         a runtime raised while loading or predicting
     ├── UpstreamFailed          an LLM engine finmaas calls answered with an error, or not at all
     │    └── UpstreamTimeout    an LLM engine did not answer within its timeout
     └── Unavailable             a dependency (the database) cannot be used now
          ├── QueueFull          a model's queue is full
          ├── Busy               the server is at a capacity bound; retry after a moment
          └── ModelUnloaded      unloaded from this server by a repository client
"""

from __future__ import annotations


class FinmaasError(Exception):
    """Base of every error finmaas raises on purpose; ``str(err)`` is user-facing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Invalid(FinmaasError):
    """Input that breaks a rule; the message names the field, the rule and the value."""


class InvalidName(Invalid):
    pass


class InvalidSignature(Invalid):
    pass


class SchemaMismatch(Invalid):
    pass


class FormatMismatch(Invalid):
    pass


class PersonalDataBlocked(Invalid):
    """A prompt holds personal data that its model's privacy policy blocks; the message
    names the kinds found and their counts, never a value (``counts``: kind → how many)."""

    def __init__(self, message: str, *, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


class NotFound(FinmaasError):
    pass


class Conflict(FinmaasError):
    pass


class Forbidden(FinmaasError):
    pass


class Unauthenticated(FinmaasError):
    pass


class RateLimited(FinmaasError):
    """Over a limit; ``retry_after`` seconds until a retry can succeed, and the limit's state."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        limit: int = 0,
        policy: str = "",
        reason: str = "requests",
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.limit = limit
        self.policy = policy
        self.reason = reason
        """Which limit: requests, rows, quota or concurrency (a metric label)."""


class ArtifactCorrupted(FinmaasError):
    pass


class PredictorFailed(FinmaasError):
    pass


class UpstreamFailed(FinmaasError):
    """An engine finmaas forwards to (vLLM, llama.cpp, a vendor API) failed or was unreachable;
    the message names the engine's model and what went wrong, never its credentials."""


class UpstreamTimeout(UpstreamFailed):
    """An engine did not answer (or stream the next token) within the version's timeout."""


class Unavailable(FinmaasError):
    pass


class QueueFull(Unavailable):
    """A model's queue holds as many rows as it may; the request was refused at once."""


class Busy(Unavailable):
    """A bound on concurrent work (e.g. uploads) is reached; ``retry_after`` seconds to wait."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class ModelUnloaded(Unavailable):
    """A repository client unloaded the model from this server; it serves again after a load."""


class NotSupported(FinmaasError):
    """The server cannot do this for this model (e.g. no explanation method for its format)."""
