#!/usr/bin/env bash
# The project's entry points. Each installs what a fresh Debian/Ubuntu machine with only the
# Rust toolchain lacks, then does its job.
#
#   bash scripts/dev.sh gateway   build (release) and run the gateway on config.example.json5
#   bash scripts/dev.sh test      run the whole test suite
#   bash scripts/dev.sh deps      only install the system packages
#   bash scripts/dev.sh bench     print the benchmark figures
#   bash scripts/dev.sh guard     the channel benches, failing on a regression against benches/baseline.json
#   bash scripts/dev.sh soak      the long soak (20,000 messages over 200 chats), with figures
#   bash scripts/dev.sh hot-path  regenerate link/hot-path.ld: the code a message runs, which
#                                  the linker packs together (profiled with valgrind's callgrind)
#   bash scripts/dev.sh fuzz [S] [dev]  every fuzz target for S seconds each (default 30);
#                                  `dev`: an unoptimised build without ASan (see below)
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

# What the tests run besides our binary: bubblewrap (the exec sandbox), headless Chromium and its
# WebDriver (the control room's browser tests), PostgreSQL (the store's second backend: the tests
# start a throwaway cluster of their own) and nginx (a load balancer in front of two gateways),
# and the real MCP servers
# (PyPI's mcp-server-time, npm's server-everything), pinned, installed under target/test-tools so
# nothing global changes, and put on PATH for the test run.
TOOLS="$PWD/target/test-tools"
test_tools() {
  local need=()
  command -v bwrap >/dev/null || need+=(bubblewrap)
  command -v ip >/dev/null || need+=(iproute2)
  command -v python3 >/dev/null || need+=(python3 python3-venv)
  command -v npm >/dev/null || need+=(nodejs npm)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  [ -x /usr/sbin/nginx ] || need+=(nginx)
  if [ ${#need[@]} -gt 0 ]; then
    PACKAGES=("${need[@]}")
    deps
  fi
  if [ ! -x "$TOOLS/py/bin/mcp-server-time" ]; then
    if ! python3 -m venv "$TOOLS/py"; then
      rm -rf "$TOOLS/py"
      PACKAGES=(python3-venv)
      deps
      python3 -m venv "$TOOLS/py"
    fi
    "$TOOLS/py/bin/pip" install -q --disable-pip-version-check mcp-server-time==2026.10.19
  fi
  if [ ! -x "$TOOLS/npm/node_modules/.bin/mcp-server-everything" ]; then
    npm install -s --no-audit --no-fund --prefix "$TOOLS/npm" @modelcontextprotocol/server-everything@2026.8.31
  fi
  export PATH="$TOOLS/py/bin:$TOOLS/npm/node_modules/.bin:$PATH"
}

case "${1:-}" in
  deps) deps ;;
  gateway)
    deps
    cargo build --release --locked
    exec ./target/release/switchboard gateway --config config.example.json5 ;;
  test)
    deps
    test_tools
    cargo test --workspace --locked
    # The core end-to-end paths (chat, Telegram, cron, tasks, memory, chat commands, /stop) once more,
    # on PostgreSQL.
    SWITCHBOARD_TEST_STORE=postgres cargo test --locked --test it -- chat:: telegram:: cron:: tasks:: memory:: slash:: stop:: ;;
  bench)
    deps
    test_tools
    for b in core telegram discord cron memory voice tools streaming speech usage operations control_room; do cargo bench --locked --bench "$b"; done ;;
  guard)
    deps
    # Only figures that do not depend on the machine's speed are compared (idle RSS, calls and
    # bytes per message); three runs and short idle windows are enough for those.
    for b in telegram discord; do
      SWITCHBOARD_BENCH_GUARD="$PWD/benches/baseline.json" SWITCHBOARD_BENCH_RUNS=3 BENCH_IDLE_SECS=3 \
        cargo bench --locked --bench "$b"
    done ;;
  hot-path)
    deps
    command -v valgrind >/dev/null || { PACKAGES=(valgrind); deps; }
    cargo bench --locked --no-run --bench telegram --bench discord
    out="$PWD/target/hot-path"
    rm -rf "$out" && mkdir -p "$out"
    # The gateway runs under callgrind, instrumented only for the first message (the bench
    # switches it on and dumps it); names stay mangled, as the linker sees them. A Telegram
    # message, then a Discord one; the second bench writes the script from both profiles.
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --demangle=no --callgrind-out-file=%s %s "$@"\n' \
      "$out/%q{HOT_PATH_BENCH}.out" "$PWD/target/release/switchboard" >"$out/gateway.sh"
    chmod +x "$out/gateway.sh"
    for b in telegram discord; do
      hot=()
      [ "$b" = discord ] && hot=(BENCH_HOT_PATH="$PWD/link/hot-path.ld")
      env SWITCHBOARD_TEST_BIN="$out/gateway.sh" SWITCHBOARD_TEST_START_SECS=120 SWITCHBOARD_TEST_LOG=info \
        SWITCHBOARD_BENCH_RUNS=1 BENCH_IDLE_SECS=1 BENCH_TRACE=callgrind HOT_PATH_BENCH="$b" \
        BENCH_CALLGRIND_DUMPS="$out/telegram.out.1:$out/discord.out.1" "${hot[@]}" \
        cargo bench --locked --bench "$b"
    done
    # Relink with it and show what it packed.
    cargo bench --locked --no-run --bench telegram
    readelf -SW target/release/switchboard | grep -E ' \.text(\.hot_path)? ' ;;
  soak)
    deps
    cargo test --locked --test it soak -- --ignored --nocapture ;;
  fuzz)
    deps
    # cargo-fuzz drives libFuzzer; on a stable toolchain RUSTC_BOOTSTRAP lets it use the
    # sanitizer flags it needs.
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    secs="${2:-30}"
    # Optimised with AddressSanitizer by default. `dev` builds the targets unoptimised and
    # without a sanitizer instead, where Rust's own checks are on (integer overflow, and the
    # preconditions of unsafe slice and pointer operations, which covers what ASan finds in
    # our pure-Rust decoders): a third of the build's CPU time (740 s against 2,400 s on a
    # 2-core VM) for 4-6x fewer executions a second. CI's short run uses it.
    mode=()
    [ "${3:-}" = dev ] && mode=(--dev --sanitizer none)
    for t in config split markdown_html decode telegram_update; do
      mkdir -p "fuzz/corpus/$t"
      log="fuzz/corpus/$t.log"
      if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "${mode[@]}" --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
      fi
      echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') executions in ${secs}s"
    done ;;
  *)
    echo "usage: bash scripts/dev.sh gateway|test|deps|bench|guard|hot-path|soak|fuzz [SECONDS] [dev]" >&2
    exit 2 ;;
esac
