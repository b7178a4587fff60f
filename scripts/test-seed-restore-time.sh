#!/usr/bin/env bash
# Restore versus boot of the test seed, without deskpool (the measurement a saved tier of the
# buffer is sized from): one guest on qemu:///system, defined, booted until its guest agent
# answers guest-get-host-name, then R times saved with `virsh managedsave` (no RAM held) and
# started again (`virsh start` restores the saved state) until the agent answers again.
#
#   scripts/test-seed-restore-time.sh [R] [DOMAIN_TYPE]    R rounds (default 3), qemu (default) or kvm
#
# Prints the boot, each save and restore, the saved image's size, and the medians. Takes the
# real-host tests' lock (/tmp/deskpool-qemu-tests.lock) and removes its domain, its saved state
# and its overlay when it ends, also on failure. The seed comes from scripts/build-test-seed.sh.
set -euo pipefail

ROUNDS=${1:-3}
TYPE=${2:-qemu}
URI=qemu:///system
DEADLINE_SECS=${DESKPOOL_BOOT_DEADLINE_SECS:-600}
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "test-seed-restore-time: $*" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "R must be a positive number, not $ROUNDS"
. "$HERE/test-seed-guest.sh"
test_seed_setup restore-time
name=dp-restoretime-$$
cleanup() {
  virsh -q -c "$URI" destroy "$name" >/dev/null 2>&1 || true
  virsh -q -c "$URI" managedsave-remove "$name" >/dev/null 2>&1 || true
  virsh -q -c "$URI" undefine "$name" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

test_seed_guest "$name"
virsh -q -c "$URI" define "$WORK/$name.xml" >/dev/null

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.2f", e - s}'; }
# Waits until the agent answers with the guest's own name; prints the seconds since $1.
agent_answers() {
  local began=$1 give_up=$(( $(date +%s) + DEADLINE_SECS ))
  while :; do
    [ "$(date +%s)" -lt "$give_up" ] || die "the agent did not answer within $DEADLINE_SECS s"
    if test_seed_agent_answers "$name"; then
      since "$began"
      return
    fi
    sleep 0.1
  done
}

began=$(now)
virsh -q -c "$URI" start "$name" >/dev/null
boot=$(agent_answers "$began")
echo "boot: agent answered after $boot s"
saves=() restores=()
for r in $(seq "$ROUNDS"); do
  began=$(now)
  virsh -q -c "$URI" managedsave "$name" >/dev/null
  save=$(since "$began")
  size=$(du -m "/var/lib/libvirt/qemu/save/$name.save" 2>/dev/null | cut -f1)
  began=$(now)
  virsh -q -c "$URI" start "$name" >/dev/null
  restore=$(agent_answers "$began")
  echo "round $r: managedsave $save s (saved image ${size:-?} MiB), restore to agent $restore s"
  saves+=("$save") restores+=("$restore")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "$TYPE, 256 MiB: boot $boot s; median over $ROUNDS rounds: managedsave $(median "${saves[@]}") s, restore $(median "${restores[@]}") s"
