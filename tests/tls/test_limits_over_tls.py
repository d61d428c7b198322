#!/usr/bin/env python3
"""The other half of the e2e suite over TLS (issue 18): ordering,
presence, limits and flow control, which a TLS worker keeps exactly as
a plain one.  See test_suite_over_tls.py for how and what is left out."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_suite_over_tls  # noqa: E402

if __name__ == "__main__":
    test_suite_over_tls.main(["test_ordering", "test_presence",
                              "test_flow", "test_limits"])
