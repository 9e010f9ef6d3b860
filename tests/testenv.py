"""Loaded by pytest (`-p tests.testenv`) before Django's settings: the test run gets a var/
folder of its own, so it never touches the site's database, mail or queue under var/."""

import os
import tempfile

var = tempfile.mkdtemp(prefix="quorum-test-")
os.makedirs(os.path.join(var, "static"))  # WhiteNoise looks for STATIC_ROOT at start
os.environ["QUORUM_VAR_DIR"] = var
