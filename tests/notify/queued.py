"""Tasks queued on commit, run the way a worker runs them."""


def run_queued(queued: list) -> list[str]:
    """Do what a worker would with the tasks queued on commit: run each task's body.
    Returns the names of the tasks run."""
    names = []
    for callback in queued:
        task = callback.func.__self__  # a partial of some_task.delay
        task(*callback.args, **callback.keywords)
        names.append(task.name)
    return names
