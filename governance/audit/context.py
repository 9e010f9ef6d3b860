"""Who is asking, as far as the audit trail needs to know: set by the edge, read by `record`.

The site's middleware binds the request's address, user agent and request id; the API's token
authentication notes the token. Tasks and commands run with an empty context.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RequestContext:
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""
    token: str = ""


_current: ContextVar[RequestContext] = ContextVar("audit_request_context")


def current() -> RequestContext:
    return _current.get(RequestContext())


@contextmanager
def bound(*, ip: str = "", user_agent: str = "", request_id: str = "") -> Iterator[None]:
    reset = _current.set(RequestContext(ip=ip, user_agent=user_agent, request_id=request_id))
    try:
        yield
    finally:
        _current.reset(reset)


def note_token(prefix: str) -> None:
    """The request authenticated with this API token (its public prefix)."""
    _current.set(replace(current(), token=prefix))
