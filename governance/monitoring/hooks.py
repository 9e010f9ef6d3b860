"""What other areas want to hear from monitoring, without monitoring importing them: delivery
listens here to retrain a model when its data drifts or new data arrives.

An area appends a callback in its AppConfig's `ready()`. Callbacks run inside the transaction
that made the change, so they only queue work (`transaction.on_commit`), never call out.
"""

from collections.abc import Callable

# Each drift alert as it opens (a feature, or `quality:<metric>`, newly alerting).
ALERT_OPENED: list[Callable[[object], None]] = []

# Each batch of current data the first time it is received (not a repeat of the same data).
BATCH_RECEIVED: list[Callable[[object], None]] = []
