#!/usr/bin/env bash
# Runs the cargo tests again on GStreamer 1.26, in a Debian 13 (trixie) chroot that it
# makes with mmdebstrap: the packages scripts/setup.sh installs, from the mirror this
# machine's apt uses. The chroot is kept in /var/cache/gst-plugin-mediarecorder
# (GST126_CACHE) and made again when it is missing or when the package list changed.
# It builds with this machine's Rust (~/.cargo and ~/.rustup are bind-mounted) into
# target/gst-1.26, beside the host's own build. Everything mounted is unmounted on
# exit, also after a failure or a signal. Needs root or sudo; scripts/test.sh runs it
# after the host's checks. Arguments go to the test binaries (e.g. a test name);
# `--prepare` only makes the chroot if needed and builds the tests (test.sh does that
# while the host's tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/debian-chroot.sh

suite=trixie
cache="${GST126_CACHE:-/var/cache/gst-plugin-mediarecorder}"
root="$cache/$suite"
project="$PWD"
target_dir="target/gst-1.26"

rust_homes
# The chroot's packages: what setup.sh installs on the host (build tools included).
# Sorted, so that the same list in another order is the same chroot.
packages="$(scripts/setup.sh --list | sort -u)"

status=0
cleanup() {
  status=$?
  chroot_unmount_all || status=1
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase_started=$SECONDS
phase() {
  echo "[gst-1.26] $1 in $((SECONDS - phase_started)) s"
  phase_started=$SECONDS
}

$chroot_sudo mkdir -p "$cache"
# One run at a time uses (or rebuilds) the cached chroot.
exec 8>"$cache/$suite.lock"
if ! flock -n 8; then
  echo "[gst-1.26] waiting for another run to release $root"
  flock 8
fi
# A run that was killed (SIGKILL) may have left its mounts.
unmount_under "$root" || { echo "$root: stale mounts stay: $(mounts_under "$root")" >&2; exit 1; }

if [ ! -f "$root/.packages" ] || [ "$(cat "$root/.packages")" != "$packages" ]; then
  need_mmdebstrap
  mirror="$(debian_mirror)"
  echo "[gst-1.26] making a Debian 13 chroot in $root from $mirror (about 2 min)"
  remove_chroot "$root.new"
  # The package list is written last: a chroot without it is incomplete.
  $chroot_sudo mmdebstrap --quiet --variant=apt --include="$(paste -sd, <<<"$packages")" \
    "$suite" "$root.new" "$mirror"
  remove_chroot "$root"
  $chroot_sudo mv "$root.new" "$root"
  $chroot_sudo tee "$root/.packages" >/dev/null <<<"$packages"
  phase "made the chroot"
fi

chroot_mount "$root" "$CARGO_HOME" "$RUSTUP_HOME" "$project"
echo "[gst-1.26] $(chroot_run "$root" / gst-launch-1.0 --version | head -n 1)" \
  "($(. "$root/etc/os-release" && echo "$PRETTY_NAME"))"
run() {
  chroot_run "$root" "$project" CARGO_TARGET_DIR="$target_dir" "$@"
}
run cargo test --locked --no-run --quiet --lib --tests
phase "built the tests"
if [ "${1:-}" = --prepare ]; then
  exit 0
fi
# A GLib critical or warning fails the test that caused it; a test binary that hangs is
# stopped, its stacks printed (scripts/test-runner.sh).
run G_DEBUG=fatal_warnings "$(scripts/test-runner.sh --variable)=$project/scripts/test-runner.sh" \
  ${TEST_BINARY_LIMIT:+TEST_BINARY_LIMIT="$TEST_BINARY_LIMIT"} cargo test --locked --no-fail-fast --lib --tests -- \
  --test-threads=2 "$@" 2>&1 | tee "$project/$target_dir/test.log" || status=$?
phase "ran the tests"
exit "$status"
