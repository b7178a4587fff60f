#!/bin/bash
# Builds target/debian/deskpool_VERSION_ARCH.deb from the workspace with dpkg-deb alone (no
# cargo-deb): the release binary, the systemd unit, the man pages and the shell completions
# generated from the clap definitions, and examples/deskpool.toml as /etc/deskpool/config.toml.
# Usage: scripts/build-deb.sh [--binary PATH] [--out DIR]
#   --binary: package this deskpool binary (default: cargo build --release --locked)
#   --out: where the .deb goes (default: target/debian); its path is printed on stdout
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out=target/debian
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2;;
    esac
done
if [ -z "$binary" ]; then
    ${CARGO:-cargo} build --release --locked --bin deskpool
    binary=target/release/deskpool
fi
[ -x "$binary" ] || { echo "$binary: not an executable" >&2; exit 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "Cargo.toml: no [workspace.package] version" >&2; exit 1; }
arch=$(dpkg --print-architecture)
stage="$out/stage"
rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/deskpool" \
    "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions" \
    "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d" \
    "$stage/usr/share/doc/deskpool/examples"

install -m 0755 "$binary" "$stage/usr/bin/deskpool"
# Debug information stays in the build tree; the package carries the stripped binary.
strip --strip-unneeded "$stage/usr/bin/deskpool"
install -m 0644 packaging/deskpool.service "$stage/lib/systemd/system/deskpool.service"
install -m 0640 examples/deskpool.toml "$stage/etc/deskpool/config.toml"
install -m 0644 examples/deskpool.toml "$stage/usr/share/doc/deskpool/examples/deskpool.toml"
install -m 0644 README.md "$stage/usr/share/doc/deskpool/README.md"

"$stage/usr/bin/deskpool" generate man "$stage/usr/share/man/man1"
gzip -9n "$stage"/usr/share/man/man1/*.1
"$stage/usr/bin/deskpool" generate completions bash >"$stage/usr/share/bash-completion/completions/deskpool"
"$stage/usr/bin/deskpool" generate completions zsh >"$stage/usr/share/zsh/vendor-completions/_deskpool"
"$stage/usr/bin/deskpool" generate completions fish >"$stage/usr/share/fish/vendor_completions.d/deskpool.fish"

install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"
done
# The packages of the shared libraries the binary links directly (libvirt0, libc6, ...).
depends=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
    path=$(ldconfig -p | awk -v lib="$lib" '$1 == lib && $NF ~ /^\// {print $NF; exit}')
    [ -n "$path" ] || { echo "$lib: not found by ldconfig" >&2; exit 1; }
    dpkg-query -S "$(readlink -f "$path")" 2>/dev/null || dpkg-query -S "$path"
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
[ -n "$depends" ] || { echo "no package found for the libraries of $binary" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" -e "s/@SIZE@/$size/" \
    packaging/debian/control.in >"$stage/DEBIAN/control"

deb="$out/deskpool_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "$deb"
