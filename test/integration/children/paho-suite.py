# Runs one of Eclipse Paho's MQTT interoperability test scripts (client_test.py, client_test5.py)
# against a broker on 127.0.0.1:PORT, verbosely, optionally only the named tests.
# The scripts parse their own options and then call unittest.main(), which would parse them again:
# here they get `--port PORT` and unittest gets only the test names.
# Usage: paho-suite.py SUITE_DIR SCRIPT PORT [Test.test_name ...]
import os
import runpy
import sys
import unittest

suite_dir, script, port = sys.argv[1], sys.argv[2], sys.argv[3]
only = sys.argv[4:]
os.chdir(suite_dir)
sys.path.insert(0, suite_dir)
real_main = unittest.main
unittest.main = lambda *args, **kwargs: real_main(argv=[script] + only, exit=True, verbosity=2)
sys.argv = [script, '--port', port]
runpy.run_path(script, run_name='__main__')
