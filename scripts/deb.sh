#!/bin/sh
# make deb: a Debian package of the daemon, built with the distribution's own
# dpkg-deb from what `make install` lays out under Debian's paths. The
# maintainer scripts, control template, conffiles and copyright are in
# dist/deb; README.md ("Install") says how the package coexists with libvirt.
#
# Inputs (environment, from the Makefile): VERSION (upstream version),
# DEB_REVISION, DEB_ARCH, DEB_MAINTAINER, GO, MAKE, OUT (the directory the
# .deb is written to). Prints the path of the package on its last line.
set -eu
cd "$(dirname "$0")/.."
umask 022

: "${VERSION:?}" "${DEB_REVISION:?}" "${DEB_ARCH:?}" "${DEB_MAINTAINER:?}" "${OUT:?}"
GO=${GO:-go}
MAKE=${MAKE:-make}
pkg=virtstoraged-go
debversion=$VERSION-$DEB_REVISION
# File dates in the package are the last commit's, so that two builds of one
# commit give the same package (dpkg-deb clamps to SOURCE_DATE_EPOCH).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d "${TMPDIR:-/tmp}/vsdeb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# Debian 12 keeps units under /lib/systemd/system, as its libvirt does.
"$MAKE" --no-print-directory install DESTDIR="$root" PREFIX=/usr UNITDIR=/lib/systemd/system \
	DOCDIR=/usr/share/doc/$pkg >"$work/install.log"

# Debian policy: man pages and changelogs compressed, a copyright file, no
# empty doc clutter.
gzip -9n "$root/usr/share/man/man8/virtstoraged.8"
install -m 0644 dist/deb/copyright "$root/usr/share/doc/$pkg/copyright"
printf '%s (%s) unstable; urgency=medium\n\n  * Built from the virtstoraged-go tree by make deb.\n\n -- %s  %s\n' \
	"$pkg" "$debversion" "$DEB_MAINTAINER" "$(date -R -d "@$SOURCE_DATE_EPOCH")" |
	gzip -9n >"$root/usr/share/doc/$pkg/changelog.Debian.gz"

# libc's version from the binary itself, as dpkg-shlibdeps computes it for
# Debian's own packages.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$root/usr/sbin/virtstoraged" 2>"$work/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p')
if [ -z "$depends" ]; then
	cat "$work/shlibdeps.log" >&2
	echo "deb: dpkg-shlibdeps found no dependency of the daemon" >&2
	exit 1
fi

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$debversion|" -e "s|@ARCH@|$DEB_ARCH|" -e "s|@MAINTAINER@|$DEB_MAINTAINER|" \
	-e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" dist/deb/control.in >"$root/DEBIAN/control"
install -m 0644 dist/deb/conffiles "$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
	install -m 0755 "dist/deb/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

mkdir -p "$OUT"
deb=$OUT/${pkg}_${debversion}_$DEB_ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
