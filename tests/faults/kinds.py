"""The job kind the fault tests run, registered in the test process and in their workers alike:
it marks each attempt that starts, can hold its first attempt until its worker is killed, and
notes each time it finishes, so a test can count how often the work was done."""

import time
from pathlib import Path

from governance.delivery import kinds


def _marked(context) -> dict:
    folder = Path(context.params["folder"])
    attempt = context.job.attempts
    context.step("working", 10)
    (folder / f"attempt-{attempt}").touch()
    if attempt == 1:
        # Long enough for the test to kill this attempt's worker; never so long that a test
        # that fails to kill it hangs.
        deadline = time.monotonic() + context.params.get("hold_first", 0)
        while time.monotonic() < deadline:
            time.sleep(0.05)
    context.step("finishing", 90)
    with (folder / "finished").open("a") as finished:
        finished.write(f"job {context.job.pk} attempt {attempt}\n")
    return {"attempt": attempt}


MARKED = kinds.register(kinds.JobKind("marked", "Marked work", _marked, needs_version=False))
