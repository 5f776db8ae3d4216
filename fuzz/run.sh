#!/usr/bin/env bash
# Fuzz every target (or the ones named) with cargo-fuzz/libFuzzer on the nightly
# toolchain, then minimise what was found into fuzz/corpus/<target>/, which is
# committed and replayed on stable by `cargo test` (tests/fuzz_corpus.rs).
#
#   fuzz/run.sh                 all targets, 10M executions or 2 h each
#   RUNS=100000 fuzz/run.sh tcp one target, briefly
#
# Needs: rustup toolchain nightly, cargo install cargo-fuzz, python3 (seed.py).
# A crash stops the target; its input is in fuzz/artifacts/<target>/: fix the
# bug, then copy the input to fuzz/regressions/<target>/ so it is tested forever.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
MAX_SECONDS=${MAX_SECONDS:-7200}
# Seconds one input may take before libFuzzer calls it a hang (raise it on a
# machine busy with other work: a starved fuzzer times out on wall-clock time).
TIMEOUT=${TIMEOUT:-10}
# MAX_SECONDS_<target> overrides MAX_SECONDS for one target.
ALL="capture decap tcp tls_stream certificate chain xmpp dns keylog proxy_config regress_suite revocation"
TARGETS=${*:-$ALL}
[ -d seeds ] || python3 seed.py
cargo +nightly fuzz build -O
BIN=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
for t in $TARGETS; do
  case $t in
    capture|chain|tls_stream) len=16384 ;;
    *) len=8192 ;;
  esac
  budget_var="MAX_SECONDS_$t"
  budget=${!budget_var:-$MAX_SECONDS}
  mkdir -p "corpus/$t" "work/$t" "seeds/$t" "regressions/$t" "artifacts/$t"
  "$BIN/$t" "work/$t" "corpus/$t" "seeds/$t" "regressions/$t" \
    -runs="$RUNS" -max_total_time="$budget" -max_len="$len" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout="$TIMEOUT" \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 -print_pcs=0 \
    >"logs/$t.log" 2>&1 || { echo "$t: stopped (crash, leak or limit): see fuzz/logs/$t.log"; exit 1; }
  # Minimise: the smallest set of inputs that keeps every feature (set cover),
  # into a fresh corpus.
  rm -rf "min/$t" && mkdir -p "min/$t"
  "$BIN/$t" -set_cover_merge=1 "min/$t" "corpus/$t" "work/$t" "seeds/$t" -max_len="$len" \
    >"logs/$t.merge.log" 2>&1
  rm -rf "corpus/$t" && mv "min/$t" "corpus/$t"
  grep -E "stat::number_of_executed_units|cov:|Done" "logs/$t.log" | tail -3 | sed "s/^/$t: /"
  echo "$t: corpus $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
done
