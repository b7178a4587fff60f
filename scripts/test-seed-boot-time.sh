#!/usr/bin/env bash
# Boot-to-agent time of the test seed without deskpool: N overlays of the seed started at once
# on qemu:///system, each timed from its `virsh create` until its guest agent answers
# guest-get-host-name (which must be the domain's own name, from its SMBIOS serial).
#
#   scripts/test-seed-boot-time.sh [N] [DOMAIN_TYPE]     N guests (default 1), qemu (default) or kvm
#
# Prints one line per guest and a summary (first, median, last answer, in seconds). Takes the
# real-host tests' lock (/tmp/deskpool-qemu-tests.lock), so it never runs beside them, and
# removes its domains and overlays when it ends, also on failure. The seed comes from
# scripts/build-test-seed.sh (built first when the cache does not hold it).
set -euo pipefail

N=${1:-1}
TYPE=${2:-qemu}
URI=qemu:///system
DEADLINE_SECS=${DESKPOOL_BOOT_DEADLINE_SECS:-600}
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "test-seed-boot-time: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not $N"
. "$HERE/test-seed-guest.sh"
test_seed_setup boot-time
names=()
cleanup() {
  for n in "${names[@]}"; do virsh -q -c "$URI" destroy "$n" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for i in $(seq "$N"); do
  name=dp-boottime-$i
  names+=("$name")
  test_seed_guest "$name"
done

now() { date +%s.%N; }
declare -A started answered
count=0
for n in "${names[@]}"; do
  started[$n]=$(now)
  virsh -q -c "$URI" create "$WORK/$n.xml" >/dev/null
done
give_up=$(( $(date +%s) + DEADLINE_SECS ))
while [ "$count" -lt "$N" ]; do
  [ "$(date +%s)" -lt "$give_up" ] || die "not every agent answered within $DEADLINE_SECS s"
  for n in "${names[@]}"; do
    [ -z "${answered[$n]:-}" ] || continue
    test_seed_agent_answers "$n" || continue
    answered[$n]=$(awk -v s="${started[$n]}" -v e="$(now)" 'BEGIN {printf "%.1f", e - s}')
    count=$((count + 1))
    echo "$n: agent answered after ${answered[$n]} s"
  done
  sleep 0.2
done
printf '%s\n' "${answered[@]}" | sort -n | awk -v n="$N" -v t="$TYPE" '
  {v[NR] = $1}
  END {printf "%d guest(s), %s: first %.1f s, median %.1f s, last %.1f s\n", n, t, v[1], v[int((NR + 1) / 2)], v[NR]}'
