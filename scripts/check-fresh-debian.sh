#!/usr/bin/env bash
# Tries README.md's two commands as a new user would on a fresh Debian 12: in a minimal
# Debian 12 chroot (mmdebstrap --variant=apt bookworm, plus git and ca-certificates; no
# sudo, no C compiler, no GStreamer), as root, with Rust as rustup leaves it (this
# machine's ~/.rustup bind-mounted, an empty ~/.cargo with rustup's proxies, so crates
# and cargo-c are fetched and built afresh), in a clone of this checkout's HEAD
# (commit first: uncommitted changes are not in it). Runs scripts/record.sh, then
# scripts/test.sh, which makes its own Debian 13 chroot inside this one, and prints how
# long each took. Not part of scripts/test.sh: it takes about as long as two runs of
# it. The chroot is made afresh in a temporary folder and removed afterwards
# (FRESH_DEBIAN_KEEP=1 keeps it and prints where). Needs root or sudo.
# Arguments: the commands to run instead of the two, e.g. `scripts/record.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/debian-chroot.sh

rust_homes
project="$PWD"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/fresh-debian.XXXXXX")"
root="$work/root"
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=(scripts/record.sh scripts/test.sh)

cleanup() {
  local status=$?
  chroot_unmount_all || status=1
  if [ "${FRESH_DEBIAN_KEEP:-0}" = 1 ]; then
    echo "Kept the chroot in $root"
  else
    remove_chroot "$work" || status=1
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_mmdebstrap
mirror="$(debian_mirror)"
started=$SECONDS
echo "== Making a minimal Debian 12 in $root from $mirror"
$chroot_sudo mmdebstrap --quiet --variant=apt --include=ca-certificates,git bookworm "$root" "$mirror"
echo "== made in $((SECONDS - started)) s"
# A network whose TLS goes through an inspecting proxy is trusted through this machine's
# local CAs (/usr/local/share/ca-certificates); a new machine there would have them too,
# or cargo could not fetch crates.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  $chroot_sudo cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  $chroot_sudo chroot "$root" update-ca-certificates >/dev/null 2>&1
  echo "Added this machine's local CAs: $(cd /usr/local/share/ca-certificates && echo *.crt)"
fi

# Rust as `rustup-init -y` leaves it: toolchains in ~/.rustup, and in ~/.cargo/bin the
# rustup binary under the names of the tools it stands in for. No crates, no cargo-c.
$chroot_sudo install -d "$root/root/.cargo/bin" "$root/root/.rustup"
$chroot_sudo install -m 755 "$CARGO_HOME/bin/rustup" "$root/root/.cargo/bin/rustup"
for tool in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  $chroot_sudo ln "$root/root/.cargo/bin/rustup" "$root/root/.cargo/bin/$tool"
done
# The project as a new user gets it: a clone.
$chroot_sudo git clone --quiet --no-hardlinks "$project" "$root/root/gst-plugin-mediarecorder"
echo "Cloned $(git -C "$root/root/gst-plugin-mediarecorder" log --oneline -1)"

chroot_mount "$root" "$RUSTUP_HOME:/root/.rustup"
status=0
for command in "${commands[@]}"; do
  echo "== $command (in the fresh Debian 12)"
  t0=$SECONDS
  rc=0
  $chroot_sudo chroot "$root" env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ${TEST_GST126:+TEST_GST126="$TEST_GST126"} \
    sh -c 'cd /root/gst-plugin-mediarecorder && exec "$@"' sh $command || rc=$?
  echo "== $command: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || status=1
done
echo "== fresh Debian 12 check: $([ $status -eq 0 ] && echo PASSED || echo FAILED) in $((SECONDS - started)) s"
exit $status
