#!/usr/bin/env bash
# Re-record the demo capture with edgetap itself: its loopback deployment
# (a DNS authority, two Expressway-E peers on HTTPS, IM and Presence with XMPP
# STARTTLS; TLS 1.3 with the keys embedded in a Decryption Secrets Block, and
# the DNS answers discovery got), and the root the demo trusted beside it.
# The certificates are made relative to now, so the suite that replays the
# capture (configs/regress-demo.toml) judges it at the time it was recorded:
# this script writes that time into the suite.
#
# Usage: captures/demo/refresh.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet -- demo --pcap captures/demo/demo.pcapng > /dev/null
at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
sed -i "s/^at = .*/at = \"$at\"/" configs/regress-demo.toml
echo "captures/demo/demo.pcapng recorded; configs/regress-demo.toml judges it at $at"
