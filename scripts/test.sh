#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs formatting, lint and every test.
# Safe to run again: builds are cached under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_rust() {
  if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install Rust (https://rustup.rs) and run again" >&2
    exit 1
  fi
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
}

step "toolchain"
need_rust
cargo --version

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --all-targets --locked -- -D warnings

step "tests"
cargo test --locked
