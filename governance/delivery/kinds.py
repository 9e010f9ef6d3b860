"""The kinds of job Quorum runs. An area registers each of its kinds once, at start, with the
function a worker calls to do the work; `runner.execute` gives that function a JobContext."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from governance.access.roles import Capability
from governance.delivery.errors import UnknownJobKind

if TYPE_CHECKING:
    from governance.delivery.runner import JobContext
    from governance.registry.models import ModelVersion


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    run: "Callable[[JobContext], dict]"
    # Who may start it, and whether it works on a model version.
    capability: str = Capability.RUN_PIPELINES
    needs_version: bool = True
    # Checks the parameters before anything is queued; raises InvalidInput naming the field.
    check: Callable[[dict], None] | None = None
    # Then checks them against the version and its project's data (a data set of another
    # project, one without the model's columns); raises InvalidInput naming the field.
    check_against: "Callable[[dict, ModelVersion], None] | None" = None


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Make a kind known; registering the same name again replaces it (module reloads)."""
    _KINDS[kind.name] = kind
    return kind


def get(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none yet"
        raise UnknownJobKind(
            f"Quorum has no job {name!r}; it knows: {known}.", fields={"kind": ["unknown"]}
        ) from None


def known() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.label)
