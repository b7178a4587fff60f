#!/usr/bin/env bash
# Runs a real libvirt daemon with the QEMU driver on this machine, for deskpool's qemu tests.
#
#   scripts/libvirt-host.sh up      install what is missing, start virtlogd + libvirtd, wait for
#                                   qemu:///system; then the second host (below)
#   scripts/libvirt-host.sh down    stop the daemons this script started (and only those)
#   scripts/libvirt-host.sh status  say what runs; exit 0 when both hosts answer
#   scripts/libvirt-host.sh kill-libvirtd   SIGKILL the libvirtd started here (a fault for the
#                                   tests; guests keep running; `up` starts it again)
#
# For a fresh Debian 12 machine, as root (or through sudo), with or without systemd. Quiet on
# success; on failure it says what failed and where to look, and exits non-zero. Idempotent.
# Uses KVM when /dev/kvm is there and usable, TCG otherwise (libvirt decides from its
# capabilities; deskpool picks `kvm` when they offer it).
#
# The second host is the session daemon of an unprivileged user (`deskpool-session`, created
# here, in group kvm): its own virtlogd + libvirtd, started as that user without an idle
# timeout, reached by root as $SESSION_URI (printed by `status`). For root, qemu:///session
# would be the system daemon again.
set -euo pipefail

STATE_DIR=${DESKPOOL_HOST_STATE:-/var/lib/deskpool-host}
URI=qemu:///system
WAIT_SECS=${DESKPOOL_HOST_WAIT_SECS:-60}
SEED_POOL=deskpool-seeds
SEED_DIR=/var/lib/deskpool-seeds
SESSION_USER=${DESKPOOL_SESSION_USER:-deskpool-session}
SESSION_HOME=/home/$SESSION_USER
SESSION_RUN=$SESSION_HOME/.cache/libvirt
SESSION_URI="qemu+unix:///session?socket=$SESSION_RUN/libvirt-sock"

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

die() { echo "libvirt-host: $*" >&2; exit 1; }
note() { [ -z "${VERBOSE:-}" ] || echo "libvirt-host: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo)"
  SUDO="sudo -n"
fi
as_root() { $SUDO "$@"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep "install ok installed" >/dev/null; }

# The bookworm version of a package (the highest candidate from a bookworm archive), for pins.
bookworm_version() {
  apt-cache madison "$1" | awk -F'|' '$3 ~ /bookworm(-updates|-security)?\/main/ && $3 !~ /backports/ {gsub(/ /,"",$2); print $2}' |
    sort -V -r | head -n1
}

install_packages() {
  local missing=() p
  for p in libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 libvirt-clients libxml2-utils; do
    installed "$p" || missing+=("$p")
  done
  # qemu-system-x86 7.2 needs qemu-utils of its own version; a newer one (a backport) is downgraded.
  local want_utils sys_ver utils_ver
  sys_ver=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
  utils_ver=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
  if [ ${#missing[@]} -eq 0 ] && [ -n "$sys_ver" ] && [ "$sys_ver" = "$utils_ver" ]; then
    return 0
  fi
  note "installing: ${missing[*]:-} (qemu-utils pinned)"
  as_root apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 || { cat "$LOG_DIR/apt.log" >&2; die "apt-get update failed"; }
  want_utils=$(bookworm_version qemu-system-x86)
  [ -n "$want_utils" ] || die "no bookworm version of qemu-system-x86 in the apt sources (apt-cache madison qemu-system-x86)"
  apt-cache madison qemu-utils | grep -F "| $want_utils |" >/dev/null ||
    die "qemu-utils $want_utils (to match qemu-system-x86) is not available (apt-cache madison qemu-utils)"
  if ! as_root apt-get install -y -qq --no-install-recommends --allow-downgrades \
      libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils \
      "qemu-system-x86=$want_utils" "qemu-utils=$want_utils" >>"$LOG_DIR/apt.log" 2>&1; then
    tail -n 30 "$LOG_DIR/apt.log" >&2
    die "apt-get install failed (full log: $LOG_DIR/apt.log)"
  fi
}

# What a systemd-less start needs: users, groups, runtime and log directories.
prepare_system() {
  getent group kvm >/dev/null || as_root groupadd --system kvm
  getent group libvirt >/dev/null || as_root groupadd --system libvirt
  getent group libvirt-qemu >/dev/null || as_root groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    as_root useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
      -g libvirt-qemu -G kvm libvirt-qemu
  id -nG libvirt-qemu | grep -w kvm >/dev/null || as_root usermod -a -G kvm libvirt-qemu
  as_root mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/images /var/lib/libvirt/qemu "$SEED_DIR"
  # KVM: qemu runs as libvirt-qemu (group kvm); without udev rules /dev/kvm is root-only.
  if [ -c /dev/kvm ]; then
    as_root chgrp kvm /dev/kvm && as_root chmod 0660 /dev/kvm || true
  fi
}

# Whether pid $1 is a live process (a killed daemon can linger as a zombie until init reaps it).
live() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }
pid_alive() { [ -f "$1" ] && live "$(cat "$1")"; }
# Whether a live process named $1 runs as root (the session user runs daemons of the same names).
running() {
  local p
  for p in $(pgrep -x -u 0 "$1" 2>/dev/null); do live "$p" && return 0; done
  return 1
}

# Closes every descriptor above stderr in the current (sub)shell.
close_inherited_fds() {
  local fd
  for fd in $(ls /proc/$BASHPID/fd); do
    [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# Starts daemon $1 (with args) unless it runs; remembers the pid only when this script started it.
start_daemon() {
  local name=$1 pidfile="$STATE_DIR/$1.pid"; shift
  if pid_alive "$pidfile"; then return 0; fi
  if running "$name"; then
    note "$name already runs (not started here: down leaves it alone)"
    return 0
  fi
  # Without systemd or syslog, the daemons' warnings and errors go to a file of their own. The
  # daemon must not inherit our other descriptors: a lock held by whoever called us (e.g. `flock
  # FILE scripts/libvirt-host.sh up`) would otherwise stay held for the daemon's whole life.
  (close_inherited_fds
   as_root env LIBVIRT_LOG_OUTPUTS="3:file:$LOG_DIR/$name.log" \
    "$name" -d --pid-file "$pidfile.daemon" "$@" >>"$LOG_DIR/$name.log" 2>&1) ||
    { tail -n 20 "$LOG_DIR/$name.log" >&2; die "$name failed to start (log: $LOG_DIR/$name.log)"; }
  local i
  for i in $(seq 50); do
    [ -s "$pidfile.daemon" ] && break
    sleep 0.1
  done
  [ -s "$pidfile.daemon" ] || die "$name did not write its pid file"
  cp "$pidfile.daemon" "$pidfile"
}

answers() { virsh -c "$URI" version >/dev/null 2>&1; }

wait_until_answers() {
  local deadline=$((SECONDS + WAIT_SECS))
  until answers; do
    if [ -f "$STATE_DIR/libvirtd.pid" ] && ! pid_alive "$STATE_DIR/libvirtd.pid"; then
      tail -n 20 "$LOG_DIR/libvirtd.log" >&2 || true
      die "libvirtd exited during start-up (log: $LOG_DIR/libvirtd.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      virsh -c "$URI" version >&2 || true
      tail -n 20 "$LOG_DIR/libvirtd.log" >&2 || true
      die "libvirtd did not answer on $URI within ${WAIT_SECS}s (log: $LOG_DIR/libvirtd.log)"
    fi
    sleep 0.2
  done
}

ensure_seed_pool() {
  if ! virsh -c "$URI" pool-info "$SEED_POOL" >/dev/null 2>&1; then
    virsh -c "$URI" pool-define-as "$SEED_POOL" dir --target "$SEED_DIR" >/dev/null
  fi
  local info
  info=$(virsh -c "$URI" pool-info "$SEED_POOL" 2>/dev/null || true)
  if ! grep -q '^State: *running' <<<"$info"; then
    virsh -c "$URI" pool-start "$SEED_POOL" >/dev/null
  fi
  grep -q '^Autostart: *yes' <<<"$info" || virsh -c "$URI" pool-autostart "$SEED_POOL" >/dev/null
}

# kvm or tcg: what the capabilities of host $1 (default qemu:///system) offer.
accel() {
  if grep -q "<domain type='kvm'" <<<"$(virsh -c "${1:-$URI}" capabilities 2>/dev/null)"; then echo kvm; else echo tcg; fi
}

# The second host's user: unprivileged, a home under /home, in group kvm (for /dev/kvm).
prepare_session_user() {
  if ! getent passwd "$SESSION_USER" >/dev/null; then
    as_root useradd --create-home --home-dir "$SESSION_HOME" --shell /usr/sbin/nologin \
      --user-group -G kvm "$SESSION_USER"
  fi
  id -nG "$SESSION_USER" | grep -w kvm >/dev/null || as_root usermod -a -G kvm "$SESSION_USER"
  local home
  home=$(getent passwd "$SESSION_USER" | cut -d: -f6)
  [ "$home" = "$SESSION_HOME" ] || die "user $SESSION_USER exists with home $home, not $SESSION_HOME"
  [ -d "$SESSION_HOME" ] || as_root install -d -o "$SESSION_USER" -g "$SESSION_USER" -m 0700 "$SESSION_HOME"
  as_session mkdir -p "$SESSION_RUN" "$SESSION_HOME/.config/libvirt"
  # Both daemons pick VNC ports on the same machine, each unaware of the other's guests: two
  # guests booting at once could be given the same port. The session daemon takes its own range.
  local conf="$SESSION_HOME/.config/libvirt/qemu.conf"
  if [ ! -e "$conf" ] || grep -q '^# written by libvirt-host.sh' "$conf"; then
    printf '%s\n' "# written by libvirt-host.sh: VNC ports apart from the system daemon's (5900-)" \
      'remote_display_port_min = 15900' 'remote_display_port_max = 16899' |
      as_session tee "$conf.new" >/dev/null
    if cmp -s "$conf.new" "$conf"; then as_root rm -f "$conf.new"; else as_root mv "$conf.new" "$conf"; fi
  fi
}

# Runs a command as the session user, in a clean environment: no XDG_RUNTIME_DIR, so libvirt
# puts its sockets and pid files under ~/.cache/libvirt.
as_session() {
  as_root runuser -u "$SESSION_USER" -- env -i HOME="$SESSION_HOME" USER="$SESSION_USER" \
    LOGNAME="$SESSION_USER" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LC_ALL=C "$@"
}

# Live processes named $1 of the session user.
session_running() {
  local p
  for p in $(pgrep -x -u "$SESSION_USER" "$1" 2>/dev/null); do live "$p" && return 0; done
  return 1
}

# Starts the session user's daemon $1 unless it runs, as a daemon with no idle timeout (one that
# virsh autostarts would exit when idle). Remembers the pid only when this script started it.
start_session_daemon() {
  local name=$1 pidfile="$STATE_DIR/session-$1.pid" own="$SESSION_RUN/$1.pid"
  local log="$LOG_DIR/session-$1.log"
  if pid_alive "$pidfile"; then return 0; fi
  if session_running "$name"; then
    note "$SESSION_USER's $name already runs (not started here: down leaves it alone)"
    return 0
  fi
  as_root rm -f "$own"
  as_root touch "$log" && as_root chown "$SESSION_USER" "$log"
  (close_inherited_fds
   as_session LIBVIRT_LOG_OUTPUTS="3:file:$log" "$name" --daemon >>"$log" 2>&1) ||
    { tail -n 20 "$log" >&2; die "$SESSION_USER's $name failed to start (log: $log)"; }
  local i
  for i in $(seq 50); do
    [ -s "$own" ] && break
    sleep 0.1
  done
  [ -s "$own" ] || { tail -n 20 "$log" >&2; die "$SESSION_USER's $name did not write $own (log: $log)"; }
  as_root cp "$own" "$pidfile"
}

session_answers() { virsh -c "$SESSION_URI" version >/dev/null 2>&1; }

wait_until_session_answers() {
  local deadline=$((SECONDS + WAIT_SECS)) log="$LOG_DIR/session-libvirtd.log"
  until session_answers; do
    if [ -f "$STATE_DIR/session-libvirtd.pid" ] && ! pid_alive "$STATE_DIR/session-libvirtd.pid"; then
      tail -n 20 "$log" >&2 || true
      die "$SESSION_USER's libvirtd exited during start-up (log: $log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      virsh -c "$SESSION_URI" version >&2 || true
      tail -n 20 "$log" >&2 || true
      die "$SESSION_USER's libvirtd did not answer on $SESSION_URI within ${WAIT_SECS}s (log: $log)"
    fi
    sleep 0.2
  done
}

session_up() {
  prepare_session_user
  start_session_daemon virtlogd
  start_session_daemon libvirtd
  wait_until_session_answers
  note "up: $SESSION_URI answers, acceleration $(accel "$SESSION_URI")"
}

up() {
  install_packages
  prepare_system
  start_daemon virtlogd
  start_daemon libvirtd
  wait_until_answers
  ensure_seed_pool
  note "up: $URI answers, acceleration $(accel)"
  session_up
}

# Stops daemon $1 if this script started it (pid file $2, default $STATE_DIR/$1.pid).
stop_daemon() {
  local name=$1 pidfile=${2:-$STATE_DIR/$1.pid} pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if live "$pid" && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
    as_root kill -TERM "$pid"
    for i in $(seq 100); do live "$pid" || break; sleep 0.1; done
    if live "$pid"; then as_root kill -KILL "$pid" || true; fi
    for i in $(seq 50); do live "$pid" || break; sleep 0.1; done
  fi
  as_root rm -f "$pidfile" "$pidfile.daemon"
}

# Guests of the tests would outlive libvirtd: stops the dp- ones (deskpool's) of host $1.
destroy_desktops() {
  local d
  for d in $(virsh -c "$1" list --name 2>/dev/null | grep '^dp-' || true); do
    virsh -c "$1" destroy "$d" >/dev/null 2>&1 || true
  done
}

down() {
  if [ -f "$STATE_DIR/session-libvirtd.pid" ] && session_answers; then destroy_desktops "$SESSION_URI"; fi
  stop_daemon libvirtd "$STATE_DIR/session-libvirtd.pid"
  stop_daemon virtlogd "$STATE_DIR/session-virtlogd.pid"
  if [ -f "$STATE_DIR/libvirtd.pid" ] && answers; then destroy_desktops "$URI"; fi
  stop_daemon libvirtd
  stop_daemon virtlogd
}

status() {
  local name
  for name in virtlogd libvirtd; do
    if pid_alive "$STATE_DIR/$name.pid"; then echo "$name: running (pid $(cat "$STATE_DIR/$name.pid"), started here)"
    elif running "$name"; then echo "$name: running (not started here)"
    else echo "$name: stopped"; fi
  done
  local ok=0
  if answers; then
    echo "$URI: answers ($(virsh -c "$URI" version 2>/dev/null | awk '/hypervisor/{print $NF}' | head -n1); acceleration $(accel))"
  else
    echo "$URI: does not answer"; ok=1
  fi
  for name in virtlogd libvirtd; do
    if pid_alive "$STATE_DIR/session-$name.pid"; then
      echo "$SESSION_USER's $name: running (pid $(cat "$STATE_DIR/session-$name.pid"), started here)"
    elif getent passwd "$SESSION_USER" >/dev/null && session_running "$name"; then
      echo "$SESSION_USER's $name: running (not started here)"
    else echo "$SESSION_USER's $name: stopped"; fi
  done
  if session_answers; then
    echo "$SESSION_URI: answers (acceleration $(accel "$SESSION_URI"))"
  else
    echo "$SESSION_URI: does not answer"; ok=1
  fi
  return $ok
}

as_root mkdir -p "$STATE_DIR"
LOG_DIR=$STATE_DIR
case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kill-libvirtd)
    pid_alive "$STATE_DIR/libvirtd.pid" || die "no libvirtd started by this script runs"
    pid=$(cat "$STATE_DIR/libvirtd.pid")
    as_root kill -KILL "$pid"
    for _ in $(seq 100); do live "$pid" || break; sleep 0.1; done
    live "$pid" && die "libvirtd (pid $pid) survived SIGKILL"
    as_root rm -f "$STATE_DIR/libvirtd.pid" "$STATE_DIR/libvirtd.pid.daemon" ;;
  *) echo "usage: $0 up|down|status|kill-libvirtd" >&2; exit 2 ;;
esac
