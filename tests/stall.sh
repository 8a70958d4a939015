#!/usr/bin/env bash
# Stall processes as a busy VM host does: stop them for STOP seconds in every STOP + RUN, for SECONDS_TOTAL seconds.
# It touches only the processes it is pointed at, never anything else on the machine:
#   - with PIDs: those processes and every process they start (their descendants, looked up again each cycle);
#   - without: the other processes its parent shell runs, and what they start (the command beside it in
#     `stall.sh ... & command`; the shell itself is never stopped).
# The test jackd (`jackd -n drumscribe-test...`) is among them, as the test run starts it. Every process it stopped
# is continued when it ends, also when it is killed. Used to check that the JACK tests hold up (docs/live.md):
#   bash tests/stall.sh 0.02 0.1 600 & .venv/bin/python -m pytest -s tests/test_live_jack.py; kill %1
#   bash tests/stall.sh 0.02 0.1 600 PID [PID ...]
set -u
stop=${1:-0.02} run=${2:-0.1} total=${3:-600}
number='^[0-9]+([.][0-9]+)?$'
for value in "$stop" "$run" "$total"; do
  if ! [[ $value =~ $number ]]; then
    echo "stall.sh: '$value' is not a number of seconds; usage: stall.sh STOP RUN SECONDS_TOTAL [PID ...]" >&2
    exit 2
  fi
done
shift $(($# < 3 ? $# : 3))
roots="$*" keep_roots=1
if [ -z "$roots" ]; then
  roots=$PPID keep_roots=0
fi
for pid in $roots; do
  if ! [[ $pid =~ ^[0-9]+$ ]] || [ "$pid" -le 1 ]; then
    echo "stall.sh: '$pid' is not a process id to stall (expected PIDs > 1)" >&2
    exit 2
  fi
done

targets() {  # the roots' descendants (and the roots themselves when given), never this script or its children
  ps -e -o pid= -o ppid= | awk -v roots="$roots" -v self="$$" -v keep="$keep_roots" '
    { parent[$1] = $2; order[++n] = $1 }
    END {
      split(roots, r, " ")
      for (i in r) root[r[i]] = 1
      for (i = 1; i <= n; i++) {
        p = order[i]; a = p; hit = 0
        while (a in parent && a > 1) {
          if (a == self) break
          if (a in root) { hit = (a != p || keep); break }
          a = parent[a]
        }
        if (hit) printf "%s ", p
      }
    }'
}

pids=""
trap 'if [ -n "$pids" ]; then kill -CONT $pids 2>/dev/null; fi' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
end=$((SECONDS + ${total%.*}))
while [ "$SECONDS" -lt "$end" ]; do
  pids=$(targets)
  if [ -n "$pids" ]; then
    kill -STOP $pids 2>/dev/null
  fi
  sleep "$stop" & wait $!  # a wait, not a sleep, so that a kill continues them at once
  if [ -n "$pids" ]; then
    kill -CONT $pids 2>/dev/null
  fi
  pids=""
  sleep "$run"
done
