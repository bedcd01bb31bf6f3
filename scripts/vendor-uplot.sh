#!/usr/bin/env bash
# Re-vendors uPlot (the dashboard's charting library) from the npm registry: the built
# files and the licence, unchanged, into crates/dashboard/assets/vendor/uplot/.
# Usage: scripts/vendor-uplot.sh [VERSION]   (default: the version vendored now)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:-1.6.32}"
dest="$root/crates/dashboard/assets/vendor/uplot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" \
   "$work/package/LICENSE" "$dest/"
cat > "$dest/VERSION" <<TXT
uPlot $version (npm package \`uplot\`, MIT licence: see LICENSE), files copied unchanged
from the package's dist/ by scripts/vendor-uplot.sh.
TXT
echo "vendored uPlot $version into $dest"
