#!/usr/bin/env bash
# Installs what is missing, then runs every check CI runs: on this machine's GStreamer
# (1.22 on Debian 12) format, lints, all tests and the two ways to install the plugin;
# then all tests again on GStreamer 1.26 in a Debian 13 chroot (scripts/test-gst126.sh).
# Prints how long each phase and each test binary took, and a summary.
# TEST_GST126=0 leaves out the 1.26 run (and says so in the summary); CI does not set it.
set -uo pipefail
cd "$(dirname "$0")/.."
logs="target/test-logs"
mkdir -p "$logs"

results=()
failed=0
started=$SECONDS
# Sets cpu to the CPU seconds (user and system) of the children this shell has waited
# for (`times` in this shell, not in a subshell, which has its own children).
cpu_now() {
  times >"$logs/.times"
  cpu="$(awk 'END { s = 0; for (i = 1; i <= NF; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] }
    printf "%d", s }' "$logs/.times")"
}
# Runs one phase: its name, then the command. Records its wall and CPU time and its
# result; later phases run also when one fails, so that one run shows every failure.
phase() {
  local name="$1" t0=$SECONDS c0 rc=0 line
  cpu_now
  c0=$cpu
  shift
  echo "== $name"
  "$@" || rc=$?
  cpu_now
  line="$(printf '%-36s %-7s %4d s wall %5d s CPU' "$name" \
    "$([ $rc -eq 0 ] && echo ok || echo FAILED)" $((SECONDS - t0)) $((cpu - c0)))"
  [ $rc -eq 0 ] || { line+="  (exit $rc)"; failed=1; }
  results+=("$line")
  echo "== $line"
  return $rc
}

# The time cargo test reports for each test binary, slowest first: the last result
# line after each "Running" line (a test that runs itself as a child prints the
# child's result line too, before its own).
binary_times() {
  awk 'function out() { if (name != "" && line != "") { t = line; sub(/.*finished in /, "", t); sub(/s$/, "", t)
         printf "  %8.1f s  %s (%s)\n", t, name, line ~ /FAILED/ ? "FAILED" : "ok" } }
       /^ *Running / { out(); name = $2; line = "" }
       /^test result:/ { line = $0 }
       END { out() }' "$1" | sort -rn
}

# Each test binary runs under scripts/test-runner.sh, which stops one that hangs.
export "$(scripts/test-runner.sh --variable)=$PWD/scripts/test-runner.sh"

host_tests() {
  # A GLib critical or warning fails the test that caused it.
  G_DEBUG=fatal_warnings cargo test --locked --no-fail-fast --lib --tests -- --test-threads=2 \
    2>&1 | tee "$logs/host.log"
}

# Work that does not need the host's tests runs beside them at the lowest priority, on
# the CPU the tests leave idle (many wait for live sources in real time): making the
# Debian 13 chroot and building the tests in it, and installing cargo-c and building
# the release library for the install checks. Each is stopped if this script ends early.
declare -A bg=()
background() {
  local name="$1"
  shift
  nice -n 19 "$@" >"$logs/$name.log" 2>&1 &
  bg[$name]=$!
}
wait_for() {
  local rc=0
  wait "${bg[$1]}" || rc=$?
  unset "bg[$1]"
  cat "$logs/$1.log"
  return $rc
}
stop_jobs() {
  local pid
  for pid in "${bg[@]}"; do
    pkill -TERM -P "$pid" || true
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
  done
}
trap stop_jobs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "setup (Debian packages)" scripts/setup.sh || exit 1
background install-prepare scripts/check-install.sh --prepare
if [ "${TEST_GST126:-1}" != 0 ]; then
  background gst126-prepare scripts/test-gst126.sh --prepare
fi
host_gst="$(gst-launch-1.0 --version | head -n 1)"
echo "Host: $host_gst ($(. /etc/os-release && echo "$PRETTY_NAME"))"
phase "cargo fmt --check" cargo fmt --all -- --check
phase "clippy (GStreamer ${host_gst##* })" cargo clippy --locked --all-targets --quiet -- -D warnings
phase "build tests (${host_gst##* })" cargo test --locked --no-run --quiet --lib --tests
phase "cargo test (${host_gst##* })" host_tests
# The two ways to install: the .deb system-wide, and cargo cinstall into a scratch
# folder; each is checked with GStreamer's tools, and the .deb is removed again.
phase "cargo-c and release build (beside)" wait_for install-prepare
phase "install checks (${host_gst##* })" scripts/check-install.sh
if [ "${TEST_GST126:-1}" = 0 ]; then
  results+=("$(printf '%-36s SKIPPED (TEST_GST126=0)' "GStreamer 1.26 chroot")")
else
  phase "1.26 chroot and build (beside)" wait_for gst126-prepare
  phase "GStreamer 1.26 chroot" scripts/test-gst126.sh
fi

echo
echo "Test binaries on $host_gst, slowest first:"
binary_times "$logs/host.log"
if [ -f target/gst-1.26/test.log ] && [ "${TEST_GST126:-1}" != 0 ]; then
  echo "Test binaries on GStreamer 1.26, slowest first:"
  binary_times target/gst-1.26/test.log
fi
echo
echo "Summary:"
printf '  %s\n' "${results[@]}"
echo "  $([ $failed -eq 0 ] && echo PASSED || echo FAILED) in $((SECONDS - started)) s"
exit $failed
