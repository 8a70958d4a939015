#!/usr/bin/env bash
# Stall the machine as a busy VM host does: stop every test jackd and every python process for STOP seconds in
# every STOP + RUN, for SECONDS_TOTAL seconds. Used to check that the JACK tests hold up (README, Live):
#   bash tests/stall.sh 0.02 0.1 600 & .venv/bin/python -m pytest -s tests/test_live_jack.py; kill %1
set -u
stop=${1:-0.02} run=${2:-0.1} total=${3:-600}
end=$((SECONDS + ${total%.*}))
while [ "$SECONDS" -lt "$end" ]; do
  pids=$(pgrep -f "jackd -n drumscribe-test|python" | tr '\n' ' ')
  kill -STOP $pids 2>/dev/null; sleep "$stop"; kill -CONT $pids 2>/dev/null; sleep "$run"
done
