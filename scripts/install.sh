#!/bin/sh
# make install: the daemon, its systemd units, the commented config, the man
# page and the state directories, laid out as a system daemon is. Every path
# is a variable the Makefile passes (PREFIX, DESTDIR, ...); see its install
# target.
#
# The daemon itself reads /etc/libvirt/virtstoraged.conf and keeps its pools
# under /etc/libvirt/storage whatever PREFIX is (libvirt's paths, so that a
# drop-in replacement finds libvirt's files): SYSCONFDIR and LOCALSTATEDIR
# are /etc and /var unless a packager has a reason to move them.
set -eu
umask 022

: "${BIN:?}" "${PREFIX:?}" "${SBINDIR:?}" "${UNITDIR:?}" "${MANDIR:?}" "${DOCDIR:?}"
: "${SYSCONFDIR:?}" "${LOCALSTATEDIR:?}" "${RST2MAN:?}"
DESTDIR=${DESTDIR:-}
cd "$(dirname "$0")/.."

say() { printf '  %s\n' "$*"; }

# A file an administrator edits is installed only where there is none yet:
# `make install` over a running system must not undo their changes. A
# package (DESTDIR set) always gets it, and dpkg handles it as a conffile.
install_config() { # mode source target
	if [ -z "$DESTDIR" ] && [ -e "$3" ]; then
		say "kept $3 (the shipped one is $2)"
		return
	fi
	install -D -m "$1" "$2" "$DESTDIR$3"
	say "$3"
}

echo "installing into ${DESTDIR:-/} (PREFIX=$PREFIX)"

# The directories libvirt's packages give the storage driver, with Debian's
# modes (libvirt-daemon-system 9.0: every one 0755 root:root): pool configs
# and autostart links, the conventional target of a "default" dir pool, and
# the log of a daemonized (-d) daemon without a journal. /run/libvirt is
# made by the daemon at each start. A directory that exists keeps its mode:
# libvirt, or its administrator, may have chosen another.
for dir in "$SYSCONFDIR/libvirt" "$SYSCONFDIR/libvirt/storage" "$SYSCONFDIR/libvirt/storage/autostart" \
	"$LOCALSTATEDIR/lib/libvirt" "$LOCALSTATEDIR/lib/libvirt/images" "$LOCALSTATEDIR/log/libvirt"; do
	if [ -d "$DESTDIR$dir" ]; then
		say "kept $dir/"
		continue
	fi
	install -d -m 0755 "$DESTDIR$dir"
	say "$dir/"
done

install -D -m 0755 "$BIN" "$DESTDIR$SBINDIR/virtstoraged"
say "$SBINDIR/virtstoraged"

# The units name the daemon by its installed path.
install -d -m 0755 "$DESTDIR$UNITDIR"
for unit in dist/systemd/*.service dist/systemd/*.socket; do
	name=$(basename "$unit")
	sed "s|/usr/sbin/virtstoraged|$SBINDIR/virtstoraged|g" "$unit" >"$DESTDIR$UNITDIR/$name.tmp"
	chmod 0644 "$DESTDIR$UNITDIR/$name.tmp"
	mv "$DESTDIR$UNITDIR/$name.tmp" "$DESTDIR$UNITDIR/$name"
	say "$UNITDIR/$name"
done

install_config 0644 dist/virtstoraged.conf "$SYSCONFDIR/libvirt/virtstoraged.conf"
install_config 0644 dist/virtstoraged.default "$SYSCONFDIR/default/virtstoraged"

# The man page is rendered from its reStructuredText source as libvirt
# renders its own (rst2man, python3-docutils); a warning fails the build.
install -d -m 0755 "$DESTDIR$MANDIR/man8"
"$RST2MAN" --halt=warning docs/virtstoraged.8.rst >"$DESTDIR$MANDIR/man8/virtstoraged.8.tmp"
chmod 0644 "$DESTDIR$MANDIR/man8/virtstoraged.8.tmp"
mv "$DESTDIR$MANDIR/man8/virtstoraged.8.tmp" "$DESTDIR$MANDIR/man8/virtstoraged.8"
say "$MANDIR/man8/virtstoraged.8"

for doc in README.md docs/metrics.md docs/logical-thin.md; do
	install -D -m 0644 "$doc" "$DESTDIR$DOCDIR/$(basename "$doc")"
done
say "$DOCDIR/"

if [ -z "$DESTDIR" ]; then
	echo "done; to start it with systemd: systemctl daemon-reload && systemctl enable --now virtstoraged.socket virtstoraged-ro.socket virtstoraged-admin.socket"
fi
