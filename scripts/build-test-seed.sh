#!/usr/bin/env bash
# Builds deskpool's test seed: a small Debian 12 guest that boots by direct kernel boot, runs
# qemu-guest-agent, and takes its identity (hostname, machine-id) from libvirt at first boot.
#
#   scripts/build-test-seed.sh          build it unless the cache holds it; print its directory
#   scripts/build-test-seed.sh --key    print the cache key only (builds nothing)
#
# The result, in $DESKPOOL_SEED_CACHE/<key>/ (default /var/cache/deskpool/test-seed):
#   seed.qcow2    the root filesystem (ext4 on the whole disk, no partition table)
#   vmlinuz       the kernel, initrd.img its initramfs (for <kernel> and <initrd>)
#   cmdline       the kernel command line to boot it with (for <cmdline>)
#   build.log     what the build printed; build-secs the build's wall time in seconds
# The key is a hash of this script and the candidate versions of the packages it installs, so a
# changed script or a package update builds a new seed; an unchanged one is reused as it is.
#
# Only Debian packages from the machine's apt sources are used (mmdebstrap, e2fsprogs,
# qemu-utils are installed when missing). Runs as root (mmdebstrap's root mode; no mounts,
# no loop devices: `mke2fs -d` writes the tree into the filesystem image).
#
# The guest has no systemd: busybox's init runs /etc/init.d/rcS (below), which loads the
# virtio modules, sets the hostname from the SMBIOS serial number libvirt gives the domain
# (`<sysinfo type='smbios'><system><entry name='serial'>`; deskpool's built-in template puts
# the desktop's name there), writes a fresh /etc/machine-id when it is empty (the seed ships it
# empty); init then keeps qemu-guest-agent running on the virtio-serial port
# org.qemu.guest_agent.0.
set -euo pipefail

SUITE=bookworm
PACKAGES=(busybox-static qemu-guest-agent linux-image-amd64 kmod)
CACHE=${DESKPOOL_SEED_CACHE:-/var/cache/deskpool/test-seed}
DISK_MIB=${DESKPOOL_SEED_DISK_MIB:-512}
# no_timer_check: under TCG on a loaded host the timer interrupt can come too late for the
# kernel's IO-APIC timer check, which then panics ("IO-APIC + timer doesn't work!"). The console
# is the VGA one: deskpool's built-in template has no serial port.
CMDLINE="root=/dev/vda rw console=tty0 quiet no_timer_check"
# Modules the initramfs needs for the root disk, and the guest for its agent channel.
INITRD_MODULES=(virtio_pci virtio_blk ext4)
GUEST_MODULES=(virtio_console virtio_net)

export LC_ALL=C DEBIAN_FRONTEND=noninteractive
die() { echo "build-test-seed: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap builds the tree as root, without mounts)"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep "install ok installed" >/dev/null; }
missing=()
for p in mmdebstrap e2fsprogs qemu-utils; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-test-seed: installing ${missing[*]}" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
fi

cache_key() {
  {
    sha256sum <"$0"
    apt-cache policy "${PACKAGES[@]}" | awk '/^[^ ]/ {p = $1} /Candidate:/ {print p, $2}'
  } | sha256sum | cut -c1-16
}
KEY=$(cache_key)
if [ "${1:-}" = "--key" ]; then echo "$KEY"; exit 0; fi
[ $# -eq 0 ] || die "unknown argument $1 (expected none or --key)"

OUT=$CACHE/$KEY
if [ -f "$OUT/seed.qcow2" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.build-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
started=$(date +%s.%N)
ROOT=$WORK/root
LOG=$WORK/build.log

# The init script and the agent's service live in the repository's own words, here.
cat >"$WORK/rcS" <<'EOF'
#!/bin/busybox sh
# deskpool test seed: first-boot identity (init starts the guest agent after this).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
bb=/bin/busybox
# The initramfs has moved /proc, /sys and /dev here already; mount what is not there.
$bb mountpoint -q /proc || $bb mount -t proc proc /proc
$bb mountpoint -q /sys || $bb mount -t sysfs sysfs /sys
$bb mountpoint -q /dev || $bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
$bb mkdir -p /dev/pts /run /tmp
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs tmpfs /run
for m in GUEST_MODULES; do modprobe "$m"; done
serial=$(cat /sys/class/dmi/id/product_serial 2>/dev/null)
case "$serial" in
  ''|'Not Specified'|'None') serial=deskpool-seed ;;
esac
echo "$serial" >/etc/hostname
$bb hostname "$serial"
if [ ! -s /etc/machine-id ]; then
  tr -d '-' </proc/sys/kernel/random/uuid >/etc/machine-id
fi
$bb ip link set lo up
# Every Ethernet interface the domain gives the guest asks DHCP for an address, in the
# background: a desktop with no interface (deskpool's built-in template has none) boots as
# fast, and one with an interface reports its address through the agent once it has a lease.
for i in /sys/class/net/*; do
  i=${i##*/}
  [ "$i" = lo ] && continue
  $bb ip link set "$i" up
  $bb udhcpc -b -i "$i" -s /etc/udhcpc.script
done
EOF
sed -i "s/GUEST_MODULES/${GUEST_MODULES[*]}/" "$WORK/rcS"
# udhcpc runs this with the lease in its environment: the address, the default route and the
# name servers are set as the lease says.
cat >"$WORK/udhcpc.script" <<'EOF'
#!/bin/busybox sh
bb=/bin/busybox
case "$1" in
  deconfig) $bb ip -4 addr flush dev "$interface"; $bb ip link set "$interface" up ;;
  bound|renew)
    $bb ip -4 addr flush dev "$interface"
    $bb ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do $bb ip route replace default via "$r" dev "$interface"; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
EOF
# The agent, kept running by init (respawned should it exit, or start before its port is there).
cat >"$WORK/qemu-ga" <<'EOF'
#!/bin/busybox sh
# No udev here, so no /dev/virtio-ports/ names: find the agent's port by its name in sysfs.
while :; do
  for p in /sys/class/virtio-ports/*; do
    if [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && [ -e "/dev/${p##*/}" ]; then
      exec /usr/sbin/qemu-ga --method=virtio-serial --path="/dev/${p##*/}" --logfile=/run/qemu-ga.log
    fi
  done
  sleep 0.2
done
EOF

echo "building the test seed $KEY in $OUT" >&2
mmdebstrap --variant=essential \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"' \
  --essential-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/deskpool.conf"' \
  --essential-hook='echo COMPRESS=gzip >> "$1/etc/initramfs-tools/conf.d/deskpool.conf"' \
  --essential-hook="printf '%s\n' ${INITRD_MODULES[*]} >> \"\$1/etc/initramfs-tools/modules\"" \
  "$SUITE" "$ROOT" >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; die "mmdebstrap failed (log above)"; }

cp "$ROOT"/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$WORK/initrd.img"
chmod 0644 "$WORK/vmlinuz" "$WORK/initrd.img"
# The guest needs no kernel image, no initramfs tools and only the modules it loads.
kver=$(ls "$ROOT/lib/modules")
rm -rf "$ROOT"/boot/* "$ROOT/var/cache/apt" "$ROOT/var/lib/apt/lists"
keep=$WORK/modules
mkdir -p "$keep"
for m in "${GUEST_MODULES[@]}"; do
  chroot "$ROOT" modprobe --set-version "$kver" --show-depends "$m" | awk '{print $2}'
done | sort -u | while read -r f; do
  mkdir -p "$keep$(dirname "$f")"
  cp "$ROOT$f" "$keep$f"
done
rm -rf "$ROOT/lib/modules/$kver/kernel"
cp -a "$keep/lib/modules/$kver/kernel" "$ROOT/lib/modules/$kver/"
chroot "$ROOT" depmod "$kver"

# busybox's init (it picks the applet by the name it runs as), with the identity script as its
# rc. No getty: nobody logs in to the test seed (root is locked); the agent is its interface.
ln -sf /bin/busybox "$ROOT/sbin/init"
mkdir -p "$ROOT/etc/init.d"
install -m 0755 "$WORK/rcS" "$ROOT/etc/init.d/rcS"
install -m 0755 "$WORK/qemu-ga" "$ROOT/etc/init.d/qemu-ga"
install -m 0755 "$WORK/udhcpc.script" "$ROOT/etc/udhcpc.script"
cat >"$ROOT/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
::respawn:/etc/init.d/qemu-ga
::ctrlaltdel:/bin/busybox reboot
::shutdown:/bin/busybox sync
EOF
# Each copy makes its own machine-id at first boot; the seed holds none.
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
echo "/dev/vda / ext4 rw 0 1" >"$ROOT/etc/fstab"

mke2fs -q -t ext4 -L deskpool-seed -E root_owner=0:0 -d "$ROOT" "$WORK/root.img" "${DISK_MIB}M" >>"$LOG" 2>&1 ||
  { tail -n 20 "$LOG" >&2; die "mke2fs failed"; }
qemu-img convert -c -O qcow2 "$WORK/root.img" "$WORK/seed.qcow2" >>"$LOG" 2>&1 || die "qemu-img convert failed"
rm -rf "$ROOT" "$WORK/root.img" "$keep" "$WORK/rcS" "$WORK/qemu-ga" "$WORK/udhcpc.script"
echo "$CMDLINE" >"$WORK/cmdline"
awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f\n", e - s}' >"$WORK/build-secs"
chmod 0755 "$WORK"
rm -rf "$OUT"
mv "$WORK" "$OUT"
trap - EXIT
echo "$OUT"
