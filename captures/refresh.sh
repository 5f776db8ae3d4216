#!/usr/bin/env bash
# Re-record every capture under captures/ with edgetap itself, in one run of
# its loopback demo deployment (so they share one demo root CA):
#
#   captures/demo/demo.pcapng   edgetap demo: DNS discovery and probes of the
#                               deployment (TLS 1.3 keys embedded, TLS 1.2, XMPP)
#   captures/demo/demo.root.pem the demo's root CA (stands in for a public CA)
#   captures/proxy/*.pcapng     openssl s_client through `edgetap proxy` in
#                               front of the same deployment (see captures/README.md)
#
# The certificates are made relative to now, so configs/regress-demo.toml,
# which replays every capture here, judges them at the time they were recorded:
# this script writes that time into it.
#
# Needs: cargo, openssl, and loopback ports 15353 and 18461-18464 free.
# Usage: captures/refresh.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
edgetap=$PWD/target/debug/edgetap
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ready NAME: wait for proxy NAME to say it listens (no test connection, which
# would be captured).
ready() {
  for _ in $(seq 100); do
    grep -q ' -> ' "$work/$1.err" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$work/$1.err" >&2
  return 1
}

# The deployment: expe1 (127.0.0.2:8443, TLS 1.3, every SAN a client needs),
# expe2 (127.0.0.3:8443, TLS 1.2 only, no collab-edge SAN), cup
# (127.0.0.4:5222, XMPP STARTTLS), DNS on 127.0.0.1:15353. Its probe run is
# the demo capture.
"$edgetap" demo --serve --dns-port 15353 --pcap captures/demo/demo.pcapng >/dev/null 2>"$work/demo.log" &
pids+=($!)
for _ in $(seq 300); do grep -q 'until Ctrl-C' "$work/demo.log" && break; sleep 0.1; done
grep -q 'until Ctrl-C' "$work/demo.log" || { cat "$work/demo.log" >&2; exit 1; }

"$edgetap" ca init --dir "$work/ca" >/dev/null

# proxy NAME PORT UPSTREAM SERVICE [EXTRA...]: a proxy writing
# captures/proxy/NAME.pcapng, its PID in $p.
proxy() {
  local name=$1 port=$2 upstream=$3 service=$4
  shift 4
  rm -f "captures/proxy/$name.pcapng"
  "$edgetap" proxy --plain --listen "127.0.0.1:$port" --upstream "$upstream" --service "$service" \
    --pcap "captures/proxy/$name.pcapng" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  p=$!
  pids+=("$p")
}
# stop PID: Ctrl-C, as a user would; the proxy flushes its capture and exits 0.
stop() {
  kill -INT "$1"
  wait "$1"
}
# client PORT NAME ARGS...: one request through the proxy, answer read to the end.
client() {
  local port=$1 name=$2
  shift 2
  printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$name" |
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$name" -quiet -ign_eof "$@" \
      >/dev/null 2>&1 || true
}

# 1. TLS 1.2 through passthrough: the chain crosses in clear.
proxy tls12-passthrough 18461 127.0.0.3:8443 http
ready tls12-passthrough
client 18461 expe2.example.com -tls1_2
stop "$p"

# 2. TLS 1.3 through passthrough: the chain is encrypted and the capture holds
#    no keys (a passthrough proxy never has them); replay must say "not judged".
proxy tls13-passthrough-no-keys 18462 127.0.0.2:8443 http
ready tls13-passthrough-no-keys
client 18462 expe1.example.com -tls1_3
stop "$p"

# 3. TLS 1.3 through intercept mode: both legs, their keys embedded in the
#    capture (Decryption Secrets Block); replay judges the server's real chain.
proxy tls13-intercept-keys 18463 127.0.0.2:8443 http --intercept --ca "$work/ca"
ready tls13-intercept-keys
client 18463 expe1.example.com -tls1_3
stop "$p"

# 4. XMPP STARTTLS (TLS 1.2) through passthrough to IM and Presence.
proxy xmpp-starttls 18464 127.0.0.4:5222 xmpp
ready xmpp-starttls
echo | timeout 10 openssl s_client -connect 127.0.0.1:18464 -starttls xmpp -xmpphost example.com \
  -servername cup.example.com -tls1_2 -quiet >/dev/null 2>&1 || true
stop "$p"

at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
sed -i "s/^at = .*/at = \"$at\"/" configs/regress-demo.toml
for f in captures/demo/demo.pcapng captures/proxy/*.pcapng; do
  echo "$f: $(stat -c %s "$f") bytes"
done
echo "configs/regress-demo.toml judges them at $at"
