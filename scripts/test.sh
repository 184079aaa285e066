#!/usr/bin/env bash
# Installs what is missing, then runs every check CI runs: format, lints, all tests,
# and the two ways to install the plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets --quiet -- -D warnings
# A GLib critical or warning fails the test that caused it.
G_DEBUG=fatal_warnings cargo test --locked --no-fail-fast --lib --tests -- --test-threads=2
# The two ways to install: the .deb system-wide, and cargo cinstall into a scratch
# folder; each is checked with GStreamer's tools, and the .deb is removed again.
scripts/check-install.sh
