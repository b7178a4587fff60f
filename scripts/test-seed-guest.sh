# Sourced by the scripts that time the test seed without deskpool (test-seed-boot-time.sh,
# test-seed-restore-time.sh): their common setup, the guest's domain XML and the agent check.
# Expects URI, TYPE and a die() function; sets SEED and WORK.

# Builds (or finds) the seed, takes the real-host tests' lock so the measurement never runs
# beside them, and makes a work directory /var/lib/libvirt/deskpool-$1-XXXXXX for overlays.
test_seed_setup() {
  case $TYPE in qemu|kvm) ;; *) die "domain type must be qemu or kvm, not $TYPE" ;; esac
  SEED=$("$(dirname "${BASH_SOURCE[0]}")/build-test-seed.sh")
  exec 9>/tmp/deskpool-qemu-tests.lock
  flock -x 9
  WORK=$(mktemp -d "/var/lib/libvirt/deskpool-$1-XXXXXX")
  chmod 0755 "$WORK"
}

# Makes $WORK/NAME.qcow2, an overlay of the seed, and writes $WORK/NAME.xml: 256 MiB, 1 vCPU,
# direct kernel boot, the name as SMBIOS serial (the guest's hostname), a guest-agent channel.
test_seed_guest() {
  local name=$1
  qemu-img create -q -f qcow2 -b "$SEED/seed.qcow2" -F qcow2 "$WORK/$name.qcow2"
  cat >"$WORK/$name.xml" <<EOF
<domain type='$TYPE'>
  <name>$name</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <sysinfo type='smbios'><system><entry name='serial'>$name</entry></system></sysinfo>
  <os>
    <type>hvm</type>
    <kernel>$SEED/vmlinuz</kernel>
    <initrd>$SEED/initrd.img</initrd>
    <cmdline>$(cat "$SEED/cmdline")</cmdline>
    <smbios mode='sysinfo'/>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$WORK/$name.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>
EOF
}

# Succeeds when NAME's guest agent answers guest-get-host-name; dies when it answers with
# another name than NAME.
test_seed_agent_answers() {
  local name=$1 reply
  reply=$(virsh -c "$URI" qemu-agent-command "$name" '{"execute":"guest-get-host-name"}' 2>/dev/null) || return 1
  [[ $reply == *"\"host-name\":\"$name\""* ]] || die "$name answered with another hostname: $reply"
}
