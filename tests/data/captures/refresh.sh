#!/usr/bin/env bash
# Copy the zeek and PcapPlusPlus captures and their oracles from ../shared/captures
# (see README.md). suricata-verify's files stay out: their licence text is not here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../../../shared/captures}
awk -F'\t' 'NR == 1 || $4 != "OISF/suricata-verify"' "$src/MANIFEST.tsv" > "$here/MANIFEST.tsv"
rm -f "$here"/*.pcap "$here"/*.pcapng "$here"/oracle/*.jsonl
for f in $(awk -F'\t' 'NR > 1 { print $1 }' "$here/MANIFEST.tsv"); do
  cp "$src/$f" "$here/"
  cp "$src/oracle/$f".*.jsonl "$here/oracle/"
done
cp "$src/oracle/README.md" "$src/oracle/TSHARK_VERSION.txt" "$here/oracle/"
echo "copied $(awk 'END { print NR - 1 }' "$here/MANIFEST.tsv") captures into $here"
