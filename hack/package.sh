#!/usr/bin/env bash
# Builds the release archive for this machine's platform and renders the krew manifest.
#
#   hack/package.sh [VERSION]        VERSION defaults to Cargo.toml's, e.g. 0.1.0
#
# Writes dist/kubectl-grayscale-vVERSION-OS-ARCH.tar.gz (the binary and LICENSE at the top
# level, as the manifest's `files` say), its .sha256, and dist/grayscale.yaml: the manifest
# with VERSION in every URI and the sha256 of every archive present in dist/ (archives built
# on other platforms can be dropped there first). PACKAGE_BINARY=path skips the release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=${1:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)}
VERSION=${VERSION#v}

case "$(uname -s)" in
  Linux) os=linux ;; Darwin) os=darwin ;; MINGW*|MSYS*|CYGWIN*) os=windows ;;
  *) echo "unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;;
  *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
exe=kubectl-grayscale
[ "$os" = windows ] && exe=kubectl-grayscale.exe

if [ -z "${PACKAGE_BINARY:-}" ]; then
  cargo build --release --locked --bin kubectl-grayscale
  PACKAGE_BINARY=target/release/$exe
fi

mkdir -p dist
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$PACKAGE_BINARY" "$stage/$exe"
cp LICENSE "$stage/LICENSE"
archive=dist/kubectl-grayscale-v$VERSION-$os-$arch.tar.gz
tar -C "$stage" --owner=0 --group=0 -czf "$archive" "$exe" LICENSE
sha256sum "$archive" | awk '{print $1}' >"$archive.sha256"

# Render: the version everywhere, then each platform's sha256 where its archive is here.
sed -e "s/v[0-9][0-9.]*[0-9]\(-[a-z]*-[a-z0-9]*\.tar\.gz\)/v$VERSION\1/g" \
    -e "s|download/v[0-9][0-9.]*[0-9]/|download/v$VERSION/|g" \
    -e "s/^  version: v.*/  version: v$VERSION/" plugin-manifest/grayscale.yaml >dist/grayscale.yaml
for sum in dist/kubectl-grayscale-v"$VERSION"-*.tar.gz.sha256; do
  [ -e "$sum" ] || continue
  file=$(basename "${sum%.sha256}")
  awk -v file="$file" -v sha="$(cat "$sum")" '
    index($0, file) { hit = 1 }
    hit && /sha256:/ { sub(/sha256: .*/, "sha256: \"" sha "\""); hit = 0 }
    { print }' dist/grayscale.yaml >dist/grayscale.yaml.tmp
  mv dist/grayscale.yaml.tmp dist/grayscale.yaml
done
echo "$archive"
echo "dist/grayscale.yaml"
