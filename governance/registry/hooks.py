"""What other areas want to hear from the sync, without the registry importing them.

An area appends a callback in its AppConfig's `ready()`. Callbacks run inside the sync's
transaction, so they only queue work (`transaction.on_commit`), never call out.
"""

from collections.abc import Callable

# (model, alias, version before or None, version after or None), for each alias the sync
# finds moved in MLflow by someone other than Quorum.
ALIAS_MOVED: list[Callable[[object, str, int | None, int | None], None]] = []
