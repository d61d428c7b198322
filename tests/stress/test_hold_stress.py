#!/usr/bin/env python3
"""The slow half of tests/e2e/test_hold_attack.py (its stress_* cases):
readers that read nothing judged in one window together, a hub stopped
for 6 s that must not make a slow reader stuck, reloads of max-queue
while senders are held, and private texts beside a held flood and a
lying worker.  Seconds each, so they run in make check-stress."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../e2e")
import tntest  # noqa: E402
import test_hold_attack  # noqa: E402

CASES = {"test_" + k[len("stress_"):]: v
         for k, v in vars(test_hold_attack).items()
         if k.startswith("stress_") and callable(v)}

if __name__ == "__main__":
    tntest.main(CASES)
