"""The embedded broker never lets a worker see a message half written."""

import os
import threading

from kombu import Connection

from dashboard.broker import Transport

MESSAGES = 300


def test_a_reader_racing_the_writer_only_ever_finds_whole_messages(tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    options = {"data_folder_in": str(queue), "data_folder_out": str(queue),
               "store_processed": False}  # fmt: skip
    seen, empty, done = [], [], threading.Event()

    def read() -> None:
        # What a worker does: move each file away, then read it.
        taken = tmp_path / "taken"
        taken.mkdir()
        while not done.is_set() or os.listdir(queue):
            for name in sorted(os.listdir(queue)):
                try:
                    os.replace(queue / name, taken / name)
                except FileNotFoundError:
                    continue
                body = (taken / name).read_bytes()
                (empty if not body else seen).append(name)

    reader = threading.Thread(target=read)
    reader.start()
    with Connection("filesystem://", transport=Transport, transport_options=options) as conn:
        channel = conn.default_channel
        for n in range(MESSAGES):
            # Large enough that Kombu's own transport, filling the file in place, is caught
            # half way by this reader (which the test then fails on).
            channel._put("celery", {"body": str(n) * 50_000})
    done.set()
    reader.join(timeout=30)

    assert empty == []
    assert len(seen) == MESSAGES
    assert os.listdir(tmp_path / "staging") == []
