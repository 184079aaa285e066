# Sourced by scripts/test-gst126.sh and scripts/check-fresh-debian.sh: makes Debian
# chroots with mmdebstrap, mounts what a build needs into one, runs commands in it, and
# unmounts everything again. Needs root (or sudo). The caller sets its own traps and
# calls chroot_unmount_all from them, so that a failure or a signal leaves nothing
# mounted.

chroot_sudo=""
[ "$(id -u)" -ne 0 ] && chroot_sudo="sudo"

# The Debian mirror this machine's apt uses (from its own sources list), so that the
# chroots come from the same place as the host's packages.
debian_mirror() {
  local codename mirror
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  mirror="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
    awk -v c="$codename" '$2 == c { print $1; exit }')"
  echo "${mirror:-http://deb.debian.org/debian/}"
}

# Installs mmdebstrap on the host if it is missing.
need_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return 0
  echo "Installing mmdebstrap"
  # Waits for another apt (scripts/check-install.sh may run beside it) instead of failing.
  $chroot_sudo apt-get -qq -o DPkg::Lock::Timeout=300 update
  DEBIAN_FRONTEND=noninteractive $chroot_sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    --no-install-recommends mmdebstrap >/dev/null
}

# The mount points under DIR, deepest first (from the kernel's table, not from what this
# script remembers: a killed run may have left some).
mounts_under() {
  local dir
  dir="$(realpath -m "$1")"
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Unmounts everything under DIR; fails if something stays mounted.
unmount_under() {
  local m
  for m in $(mounts_under "$1"); do
    $chroot_sudo umount "$m" 2>/dev/null || $chroot_sudo umount -l "$m" || true
  done
  [ -z "$(mounts_under "$1")" ]
}

# Removes a chroot folder, but only when nothing is mounted inside it: `rm -rf` through
# a bind mount of /dev or ~/.cargo would delete the host's files.
remove_chroot() {
  local dir="$1"
  [ -e "$dir" ] || return 0
  if ! unmount_under "$dir"; then
    echo "Not removing $dir: still mounted: $(mounts_under "$dir" | tr '\n' ' ')" >&2
    return 1
  fi
  $chroot_sudo rm -rf --one-file-system "$dir"
}

chroot_roots=()
# Mounts what a build in chroot ROOT needs: /proc, the host's /dev (with /dev/shm and
# /dev/pts) and a fresh tmpfs on /tmp; then each further argument, a host folder, at the
# same path inside, or SRC:DEST, host folder SRC at DEST inside.
chroot_mount() {
  local root="$1" arg src dest
  shift
  chroot_roots+=("$root")
  $chroot_sudo mount -t proc proc "$root/proc"
  $chroot_sudo mount --rbind /dev "$root/dev"
  $chroot_sudo mount --make-rslave "$root/dev"
  $chroot_sudo mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
  for arg in "$@"; do
    src="${arg%%:*}"
    dest="${arg#*:}"
    $chroot_sudo mkdir -p "$root$dest"
    $chroot_sudo mount --bind "$src" "$root$dest"
  done
}

# Unmounts what chroot_mount mounted (and anything a killed run left) in every chroot
# this script mounted into. Returns non-zero if something stays mounted.
chroot_unmount_all() {
  local root status=0
  for root in "${chroot_roots[@]}"; do
    unmount_under "$root" || {
      echo "Could not unmount: $(mounts_under "$root" | tr '\n' ' ')" >&2
      status=1
    }
  done
  return $status
}

# Runs a command in chroot ROOT as the calling user, in folder DIR, with the host's Rust
# on PATH and a fresh HOME in the chroot's /tmp. Further environment: NAME=VALUE
# arguments before the command, as for env(1).
chroot_run() {
  local root="$1" dir="$2"
  shift 2
  $chroot_sudo chroot --userspec="$(id -u):$(id -g)" "$root" env -i \
    HOME=/tmp/home PATH="$CARGO_HOME/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
    CARGO_HOME="$CARGO_HOME" RUSTUP_HOME="$RUSTUP_HOME" \
    ${RUSTUP_TOOLCHAIN:+RUSTUP_TOOLCHAIN="$RUSTUP_TOOLCHAIN"} \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    sh -c 'mkdir -p "$HOME" && cd "$0" && exec env "$@"' "$dir" "$@"
}

# Where the host's Rust lives; the chroots use it through bind mounts.
rust_homes() {
  CARGO_HOME="$(realpath -m "${CARGO_HOME:-$HOME/.cargo}")"
  RUSTUP_HOME="$(realpath -m "${RUSTUP_HOME:-$HOME/.rustup}")"
  if [ ! -x "$CARGO_HOME/bin/cargo" ] || [ ! -d "$RUSTUP_HOME/toolchains" ]; then
    echo "The chroot builds with this machine's Rust as rustup installs it, and finds none" \
      "in $CARGO_HOME and $RUSTUP_HOME (set CARGO_HOME and RUSTUP_HOME if it is elsewhere)." >&2
    return 1
  fi
}
