#!/usr/bin/env bash
# Regenerate the bundled sample chains from tests/fixtures/gen-openssl.sh.
# The samples are embedded in the binary (`edgetap inspect --sample`); after
# refreshing, run the tests: tests/cli/sample.rs pins their verdicts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/../../tests/fixtures/gen-openssl.sh" "$tmp" >/dev/null
cp "$tmp/root.pem"                     "$here/example-root-ca.pem"
cp "$tmp/good-edge.pem"                "$here/expe-good.pem"
cp "$tmp/leaf-only.pem"                "$here/expe-leaf-only.pem"
cp "$tmp/xmpp-host-only.pem"           "$here/cup-xmpp-host-only.pem"
cp "$tmp/self-signed-tomcat.pem"       "$here/cucm-tomcat-self-signed.pem"
cp "$tmp/self-signed-callmanager.pem"  "$here/cucm-callmanager-self-signed.pem"
echo "refreshed samples in $here"
