"""Loaded by pytest (`-p tests.testenv`) before Django's settings: the test run gets a var/
folder of its own, so it never touches the site's database, mail or queue under var/."""

import os
import tempfile

os.environ["QUORUM_VAR_DIR"] = tempfile.mkdtemp(prefix="quorum-test-")
