#!/bin/sh
# Vendor MapLibre GL JS into the fleet console: `npm pack` the release named below in a temp dir
# (nothing is installed globally, no build runs), copy its CSP build (no blob: workers, so the
# console keeps a strict Content-Security-Policy), its stylesheet and its licence.
# Usage: sh tools/vendor_maplibre.sh [VERSION]   (run from the repository root)
set -eu
VERSION="${1:-5.20.0}"
DEST="src/anycar/fleet/console/static/vendor/maplibre-gl"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
( cd "$WORK" && npm pack --silent "maplibre-gl@$VERSION" >/dev/null && tar xzf "maplibre-gl-$VERSION.tgz" )
mkdir -p "$DEST"
for f in maplibre-gl-csp.js maplibre-gl-csp-worker.js maplibre-gl.css LICENSE.txt; do
  cp "$WORK/package/dist/$f" "$DEST/$f"
done
# Drop the sourceMappingURL comments: the maps are not shipped, and the browser would ask for them.
sed -i '/^\/\/# sourceMappingURL=/d' "$DEST/maplibre-gl-csp.js" "$DEST/maplibre-gl-csp-worker.js"
printf 'maplibre-gl %s (npm), files: dist/maplibre-gl-csp.js, dist/maplibre-gl-csp-worker.js, dist/maplibre-gl.css, dist/LICENSE.txt\nmade by tools/vendor_maplibre.sh\n' "$VERSION" > "$DEST/VERSION"
echo "vendored maplibre-gl $VERSION into $DEST"
