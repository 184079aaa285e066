#!/usr/bin/env bash
# Runs one test binary for `cargo test` (scripts/test.sh and test-gst126.sh make it the
# target's runner) under a time limit. A binary still running after TEST_BINARY_LIMIT
# seconds (1200; the slowest takes about 2 min, 7.5 on a heavily loaded machine) has
# hung: the stacks of its threads, and of any process it started, are printed with
# gdb, and it is killed. The hang then fails that binary and says where it stands, and
# the other binaries still run, where otherwise the whole run would wait until CI gives
# up on it.
# `--variable` prints the name of the variable that makes it cargo's runner on this
# machine (CARGO_TARGET_<host triple>_RUNNER).
set -u
if [ "${1:-}" = --variable ]; then
  echo "CARGO_TARGET_$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z.-' 'A-Z__')_RUNNER"
  exit 0
fi
limit="${TEST_BINARY_LIMIT:-1200}"

# The process and everything it started, parents first.
family() {
  local child
  echo "$1"
  for child in $(pgrep -P "$1"); do
    family "$child"
  done
}

print_stacks() {
  local pid
  for pid in $(family "$1"); do
    echo "---- process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
    if command -v gdb >/dev/null; then
      gdb -p "$pid" -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' 2>&1 |
        grep -v '^\[New LWP\|^\[Thread debugging\|^Using host libthread_db'
    else
      echo "(gdb is not installed: scripts/setup.sh installs it)"
    fi
  done
}

"$@" &
test_pid=$!
(
  # The sleep writes nowhere: a leftover one must not hold the output open for tee.
  sleep "$limit" </dev/null >/dev/null 2>&1 &
  sleeper=$!
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  wait "$sleeper"
  echo "==== $(basename "$1") is still running after $limit s: hung." \
    "The stacks of its threads, then it is killed:" >&2
  print_stacks "$test_pid" >&2
  kill -KILL $(family "$test_pid") 2>/dev/null
) &
watchdog=$!
wait "$test_pid"
status=$?
kill -TERM "$watchdog" 2>/dev/null
wait "$watchdog" 2>/dev/null
exit "$status"
