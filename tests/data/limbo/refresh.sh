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
PY
cp "$src/LICENSE.x509-limbo" "$here/"
