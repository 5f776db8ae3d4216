#!/usr/bin/env bash
# Extract the x509-limbo cases tests/cli/limbo.rs judges (server validation with
# a DNS peer name, no CRLs) from the shared copies of the suite into
# limbo-server-dns.json. The regenerated head set comes first; an upstream
# 2023-12 case with the same id is an older copy and is skipped.
# Usage: refresh.sh [SHARED_LIMBO_DIR]   (default ../shared/pki/limbo)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../../../shared/pki/limbo}
python3 - "$src" "$here" <<'PY'
import json, sys
src, here = sys.argv[1], sys.argv[2]
seen, cases = set(), []
for name in ("regenerated-head/limbo-native-only.json", "upstream-2023-12/limbo.json"):
    doc = json.load(open(f"{src}/{name}"))
    for case in doc["testcases"]:
        if case["id"] in seen:
            continue
        seen.add(case["id"])
        if case.get("validation_kind") != "SERVER":
            continue
        if (case.get("expected_peer_name") or {}).get("kind") != "DNS":
            continue
        if "has-crl" in (case.get("features") or []):
            continue
        cases.append(case)
json.dump({"source": "x509-limbo (C2SP), Apache-2.0: see LICENSE.x509-limbo",
           "testcases": cases}, open(f"{here}/limbo-server-dns.json", "w"), indent=1)
print(f"{len(cases)} cases")

# A sample of the whole regenerated set for tests/cli/limbo.rs's
# limbo_vendored_sample: every server case with a DNS or IP name and no CRLs
# outside BetterTLS, and every 8th BetterTLS one (the whole set is 41 MB).
import gzip, lzma
doc = json.load(lzma.open(f"{src}/regenerated-head/limbo.json.xz"))
sample, n = [], 0
for c in doc["testcases"]:
    if c.get("validation_kind") != "SERVER":
        continue
    if (c.get("expected_peer_name") or {}).get("kind") not in ("DNS", "IP"):
        continue
    if "has-crl" in (c.get("features") or []):
        continue
    if c["id"].startswith("bettertls::"):
        n += 1
        if n % 8:
            continue
    sample.append({k: c.get(k) for k in ("id", "validation_kind", "expected_result",
        "expected_peer_name", "validation_time", "features", "peer_certificate",
        "untrusted_intermediates", "trusted_certs")})
raw = json.dumps({"source": "x509-limbo (C2SP) regenerated head, Apache-2.0: see LICENSE.x509-limbo",
                  "testcases": sample}, separators=(",", ":")).encode()
open(f"{here}/limbo-sample.json.gz", "wb").write(gzip.compress(raw, 9, mtime=0))
print(f"{len(sample)} sample cases")
PY
cp "$src/LICENSE.x509-limbo" "$here/"
