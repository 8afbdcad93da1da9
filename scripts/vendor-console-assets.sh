#!/usr/bin/env bash
# Vendors the web console's one third-party asset, Chart.js, into the gateway package
# (services/gateway/src/tollgate/gateway/console/static/vendor/). The result is committed, like a
# lockfile pin, so `make run` and `make test` need neither Node.js nor the network for it; run this
# (`make console-assets`) only to change the pinned version, then update the integrity below and
# docs/console.md. It fetches the package tarball with `npm pack` and checks npm's sha512 integrity.
set -euo pipefail
VERSION="4.5.1"
INTEGRITY="sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5tVtevcBtIdICNWqlq5+E8/Pw=="
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/services/gateway/src/tollgate/gateway/console/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

command -v npm >/dev/null 2>&1 || { echo "npm is needed to vendor chart.js (apt-get install npm)" >&2; exit 1; }
(cd "$WORK" && npm pack --silent "chart.js@$VERSION" >/dev/null)
TARBALL="$WORK/chart.js-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$ACTUAL" != "$INTEGRITY" ]; then
    echo "chart.js $VERSION: integrity mismatch ($ACTUAL)" >&2
    exit 1
fi
tar -xzf "$TARBALL" -C "$WORK" package/dist/chart.umd.min.js package/LICENSE.md
mkdir -p "$DEST"
cp "$WORK/package/dist/chart.umd.min.js" "$DEST/chart.umd.min.js"
cp "$WORK/package/LICENSE.md" "$DEST/chart.js.LICENSE.md"
echo "chart.js $VERSION (MIT) -> $DEST"
