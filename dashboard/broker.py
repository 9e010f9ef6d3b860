"""The embedded broker: Kombu's filesystem transport, with messages that appear whole.

Kombu writes a message file where workers look for it, then fills it. A worker polling at
that moment moves the empty file away, fails to decode it and stops. Here the message is
written beside the queue and renamed into it: a rename within one file system is atomic.
"""

import os
import tempfile
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        # The same name Kombu gives: workers take the files in name order.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = os.path.join(os.path.dirname(self.data_folder_out), "staging")
        try:
            os.makedirs(staging, exist_ok=True)
            handle, partial = tempfile.mkstemp(dir=staging, suffix=".part")
            with os.fdopen(handle, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as error:
            raise ChannelError(f"Cannot add {name!r} to the queue folder") from error


class Transport(filesystem.Transport):
    Channel = Channel
