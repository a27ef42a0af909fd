#!/usr/bin/env bash
# The project's entry points. Each installs what a fresh Debian/Ubuntu machine with only the
# Rust toolchain lacks, then does its job.
#
#   bash scripts/dev.sh gateway   build (release) and run the gateway on config.example.json5
#   bash scripts/dev.sh test      run the whole test suite
#   bash scripts/dev.sh deps      only install the system packages
#   bash scripts/dev.sh bench     print the benchmark figures
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build needs: a C toolchain for the bundled SQLite, cmake for whisper.cpp.
PACKAGES=(build-essential pkg-config cmake)

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "please install: ${missing[*]} (no apt-get here)" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

case "${1:-}" in
  deps) deps ;;
  gateway)
    deps
    cargo build --release --locked
    exec ./target/release/switchboard gateway --config config.example.json5 ;;
  test)
    deps
    cargo test --workspace --locked ;;
  bench)
    deps
    for b in core telegram discord cron memory voice; do cargo bench --locked --bench "$b"; done ;;
  *)
    echo "usage: bash scripts/dev.sh gateway|test|deps|bench" >&2
    exit 2 ;;
esac
