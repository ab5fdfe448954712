#!/usr/bin/env bash
# Fast static checks of the appliance image recipe (seconds, no build): the
# package list, the kernel command line, the USBGuard rules, the services
# (no getty, no shell, the appliance unprivileged on tty1, its serial-console
# twin only conditioned on airlock.console=ttyS0 and otherwise the same),
# what the build strips, and the shell syntax of the scripts. CI runs it through
# scripts/test.sh; the full build and boot test (make image-test) is slow.
#
#   images/check-recipe.sh [RECIPE_DIR]     default: the folder of this script
#   images/check-recipe.sh --self-test      breaks a copy of the recipe in
#                                           each checked way and expects each
#                                           break to be reported
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

check() { # DIR -> prints one line a problem; exit 1 if any
  local d=$1 bad=0
  fail() { echo "check-recipe: $*"; bad=1; }
  noncomment() { grep -v '^\s*#' "$1" | grep -v '^\s*$'; }

  # Packages: what the appliance needs, and nothing that opens a door.
  local pkgs
  pkgs=$(noncomment "$d/packages.txt")
  for p in linux-image-amd64 systemd-sysv udev pcscd libccid usbguard cryptsetup-bin initramfs-tools; do
    grep -qx "$p" <<<"$pkgs" || fail "packages.txt lacks $p"
  done
  while read -r p; do
    case $p in
      openssh-server | openssh-client | dropbear* | telnet* | gcc* | g++* | cpp* | clang* | build-essential | make | \
        binutils | python3* | network-manager | ifupdown | isc-dhcp-client | dhcpcd* | wpasupplicant | iproute2 | \
        systemd-resolved | systemd-timesyncd | wireless-tools | iw | bluez | udisks2 | usbmount | autofs | \
        getty* | mingetty | sudo | firmware-*)
        fail "packages.txt installs $p, which the appliance must not have" ;;
    esac
  done <<<"$pkgs"

  # Kernel command line: verity root and the hardening flags; nothing that
  # gives a shell or turns a protection off.
  local cmd
  cmd=" $(noncomment "$d/cmdline.txt" | paste -sd' ' -) "
  for o in roothash=@ROOTHASH@ root=/dev/mapper/airlock-root rootfstype=squashfs ro lockdown=confidentiality \
    init_on_free=1 init_on_alloc=1 slab_nomerge usbcore.authorized_default=0 panic=10 systemd.verity=0; do
    [[ $cmd == *" $o "* ]] || fail "cmdline.txt lacks $o"
  done
  for o in init= rdinit= rw single emergency rescue systemd.debug_shell rd.shell break= debug \
    systemd.unit= module.sig_enforce=0 lockdown=none lockdown=integrity usbcore.authorized_default=1 \
    usbcore.authorized_default=-1 airlock.console=; do
    if [[ $o == *= ]]; then
      [[ $cmd == *" $o"* ]] && fail "cmdline.txt has $o"
    else
      [[ $cmd == *" $o "* ]] && fail "cmdline.txt has $o"
    fi
  done

  # USBGuard: block by default, each allow rule one class with match-all
  # (a device offering two classes matches none), only hubs, keyboards,
  # CCID and mass storage.
  local conf=$d/rootfs/etc/usbguard/usbguard-daemon.conf
  for kv in ImplicitPolicyTarget=block PresentDevicePolicy=apply-policy InsertedDevicePolicy=apply-policy \
    RuleFile=/etc/usbguard/rules.conf; do
    grep -qx "$kv" "$conf" || fail "usbguard-daemon.conf lacks $kv"
  done
  local n=0 line classes
  local field='([0-9a-f]{2}|[*])'
  local rule_re="^allow with-interface match-all [{] ([0-9a-f]{2}:$field:$field )+[}]\$"
  while read -r line; do
    n=$((n + 1))
    if [[ ! $line =~ $rule_re ]]; then
      fail "usbguard rule is not 'allow with-interface match-all { CLASS:SUB:PROTO ... }': $line"
      continue
    fi
    classes=$(grep -oE "[0-9a-f]{2}:$field:$field" <<<"$line" | cut -c1-2 | sort -u)
    [[ $(wc -l <<<"$classes") -eq 1 ]] || fail "usbguard rule allows more than one interface class: $line"
    case $classes in
      09 | 08 | 0b) ;;
      03) grep -qE '03:01:02|03:\*:\*|03:01:\*' <<<"$line" && fail "usbguard rule allows mice or any HID: $line" ;;
      *) fail "usbguard rule allows interface class $classes: $line" ;;
    esac
  done < <(noncomment "$d/rootfs/etc/usbguard/rules.conf")
  ((n == 4)) || fail "usbguard rules.conf has $n rules, want 4 (hubs, keyboards, CCID, mass storage)"

  # Services: the appliance runs unprivileged on tty1 with no network; the
  # self-test sees the real network; module loading is locked.
  local svc=$d/rootfs/etc/systemd/system
  local exec='ExecStart=/usr/bin/airlock-appliance --state /var/lib/airlock --export-usb ask'
  for kv in User=airlock TTYPath=/dev/tty1 PrivateNetwork=yes NoNewPrivileges=yes ReadWritePaths=/var/lib/airlock \
    "$exec" 'ConditionKernelCommandLine=!airlock.console=ttyS0'; do
    grep -qxF "$kv" "$svc/airlock-appliance.service" || fail "airlock-appliance.service lacks $kv"
  done
  # The serial-console twin: runs only with airlock.console=ttyS0 on the
  # kernel command line, and differs from the tty1 unit only in where the
  # terminal is (the tty, its size, the description and the condition).
  local serial=$svc/airlock-appliance-serial.service
  if [[ ! -f $serial ]]; then
    fail "airlock-appliance-serial.service is missing"
  else
    for kv in User=airlock TTYPath=/dev/ttyS0 PrivateNetwork=yes NoNewPrivileges=yes ReadWritePaths=/var/lib/airlock \
      "$exec" ConditionKernelCommandLine=airlock.console=ttyS0; do
      grep -qxF "$kv" "$serial" || fail "airlock-appliance-serial.service lacks $kv"
    done
    local where='^(Description|Conflicts|ConditionKernelCommandLine|TTYPath|TTYVTDisallocate|Environment)='
    if ! diff -q <(noncomment "$svc/airlock-appliance.service" | grep -vE "$where") \
      <(noncomment "$serial" | grep -vE "$where") >/dev/null; then
      fail "airlock-appliance-serial.service differs from airlock-appliance.service beyond the terminal: $(diff \
        <(noncomment "$svc/airlock-appliance.service" | grep -vE "$where") <(noncomment "$serial" | grep -vE "$where") | grep '^[<>]' | paste -sd' ' -)"
    fi
    grep -qxF 'Environment=TERM=linux LINES=25 COLUMNS=80' "$serial" ||
      fail "airlock-appliance-serial.service sets more than TERM, LINES and COLUMNS (Environment=TERM=linux LINES=25 COLUMNS=80)"
  fi
  grep -hE '^ExecStart=' "$svc"/airlock-appliance*.service | grep -qE -- '--(dev|key|bundle|usb|confirm-fingerprint|date)\b' &&
    fail "an appliance unit starts it with a flag that bypasses the provisioned state or the confirmations"
  grep -qxF 'PrivateNetwork=no' "$svc/airlock-selftest.service" || fail "airlock-selftest.service must see the real network (PrivateNetwork=no)"
  grep -qxF 'User=airlock' "$svc/airlock-selftest.service" || fail "airlock-selftest.service lacks User=airlock"
  grep -qxF 'Before=airlock-appliance.service airlock-appliance-serial.service' "$svc/airlock-selftest.service" ||
    fail "airlock-selftest.service does not run before both appliance units (Before=airlock-appliance.service airlock-appliance-serial.service)"
  grep -qF "echo 1 > /proc/sys/kernel/modules_disabled" "$svc/airlock-modules-lock.service" ||
    fail "airlock-modules-lock.service does not set kernel.modules_disabled=1"
  grep -rqE '^\s*(ExecStart|ExecStartPre)=.*(getty|login|/bin/(ba|da)?sh\s*$)' "$svc" && fail "a unit in the recipe starts a getty, login or shell"

  # The build masks every getty and shell unit and enables the appliance.
  local cust=$d/customize.sh
  for u in getty@.service serial-getty@.service autovt@.service console-getty.service debug-shell.service \
    rescue.service emergency.service systemd-firstboot.service; do
    grep -qF " $u " "$cust" || fail "customize.sh does not mask $u"
  done
  grep -qE 'systemctl enable airlock-appliance.service airlock-appliance-serial.service airlock-selftest.service airlock-modules-lock.service usbguard.service' "$cust" ||
    fail "customize.sh does not enable the appliance (tty1 and serial), self-test, module lock and usbguard"
  grep -qF "keep_fs=(squashfs ext4 jbd2 mbcache.ko)" "$cust" || fail "customize.sh keeps filesystem modules other than squashfs and ext4"
  grep -qF 'find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +' "$cust" || fail "customize.sh does not drop setuid bits"

  # What the build removes.
  local strip
  strip=$(noncomment "$d/strip.txt")
  for p in /usr/lib/modules/@KVER@/kernel/drivers/net /usr/lib/modules/@KVER@/kernel/net \
    '/usr/lib/modules/@KVER@/kernel/fs/*' /usr/lib/modules/@KVER@/kernel/drivers/bluetooth \
    /usr/bin/apt-get /usr/bin/dpkg /usr/bin/perl /usr/sbin/agetty /usr/bin/login /usr/sbin/sulogin /usr/bin/su; do
    grep -qxF "$p" <<<"$strip" || fail "strip.txt does not remove $p"
  done

  # Preloaded modules must not bring back what was removed.
  grep -qiE '^(e1000|virtio_net|vfat|fat|exfat|isofs|udf|ntfs|bluetooth|btusb|cfg80211)' "$d/rootfs/etc/modules-load.d/airlock.conf" &&
    fail "modules-load.d/airlock.conf loads a network or removable-media filesystem module"

  # The state partition: no devices, no programs, no setuid.
  grep -qE '^PARTLABEL=airlock-state /var/lib/airlock ext4 [^ ]*nosuid[^ ]*' "$d/rootfs/etc/fstab" &&
    grep -qE '^PARTLABEL=airlock-state [^ ]+ ext4 [^ ]*noexec' "$d/rootfs/etc/fstab" ||
    fail "fstab does not mount the state partition nosuid,noexec"

  local s
  for s in build.sh customize.sh boot-test.sh ceremony-setup.sh install-deps.sh check-recipe.sh \
    rootfs/etc/initramfs-tools/hooks/airlock-verity rootfs/etc/initramfs-tools/scripts/local-top/airlock-verity; do
    bash -n "$d/$s" 2>/dev/null || fail "$s has a shell syntax error"
  done
  return $bad
}

if [[ ${1:-} != --self-test ]]; then
  check "${1:-$here}" && echo "check-recipe: ok"
  exit
fi

# Self-test: each mutation must be reported with its reason.
status=0
mutate() { # WANT-TEXT FILE SED-EXPRESSION (or DELETE: remove the file)
  local want=$1 file=$2 expr=$3 tmp out
  tmp=$(mktemp -d)
  tar -C "$here" --exclude=./out -cf - . | tar -C "$tmp" -xf -
  if [[ $expr == DELETE ]]; then rm -f "$tmp/$file"; else sed -i -e "$expr" "$tmp/$file"; fi
  out=$(check "$tmp")
  if [[ $? -eq 0 || $out != *"$want"* ]]; then
    echo "check-recipe --self-test: breaking $file with '$expr' was not reported as '$want'; got: $out" >&2
    status=1
  fi
  rm -rf "$tmp"
}
mutate "cmdline.txt lacks slab_nomerge" cmdline.txt '/^slab_nomerge$/d'
mutate "cmdline.txt lacks lockdown=confidentiality" cmdline.txt 's/^lockdown=.*/lockdown=integrity/'
mutate "cmdline.txt has init=" cmdline.txt '$a init=/bin/sh'
mutate "cmdline.txt lacks usbcore.authorized_default=0" cmdline.txt 's/authorized_default=0/authorized_default=1/'
mutate "packages.txt installs openssh-server" packages.txt '$a openssh-server'
mutate "packages.txt lacks usbguard" packages.txt '/^usbguard$/d'
mutate "usbguard rule allows more than one interface class" rootfs/etc/usbguard/rules.conf 's/match-all { 08:\*:\* }/match-all { 08:*:* 03:*:* }/'
mutate "usbguard rule is not 'allow with-interface match-all" rootfs/etc/usbguard/rules.conf 's/^allow with-interface match-all { 0b:\*:\* }/allow with-interface one-of { 0b:*:* }/'
mutate "usbguard rule allows interface class e0" rootfs/etc/usbguard/rules.conf '$a allow with-interface match-all { e0:*:* }'
mutate "usbguard rule allows mice or any HID" rootfs/etc/usbguard/rules.conf 's/03:01:01 03:00:\*/03:*:*/'
mutate "usbguard-daemon.conf lacks ImplicitPolicyTarget=block" rootfs/etc/usbguard/usbguard-daemon.conf 's/ImplicitPolicyTarget=block/ImplicitPolicyTarget=allow/'
mutate "airlock-appliance.service lacks User=airlock" rootfs/etc/systemd/system/airlock-appliance.service 's/^User=airlock$/User=root/'
mutate "airlock-selftest.service must see the real network" rootfs/etc/systemd/system/airlock-selftest.service 's/^PrivateNetwork=no$/PrivateNetwork=yes/'
mutate "customize.sh does not mask serial-getty@.service" customize.sh 's/ serial-getty@.service / /'
mutate "strip.txt does not remove /usr/lib/modules/@KVER@/kernel/drivers/net" strip.txt '\#^/usr/lib/modules/@KVER@/kernel/drivers/net$#d'
mutate "strip.txt does not remove /usr/bin/apt-get" strip.txt '\#^/usr/bin/apt-get$#d'
mutate "customize.sh keeps filesystem modules other than squashfs and ext4" customize.sh 's/keep_fs=(squashfs ext4 jbd2 mbcache.ko)/keep_fs=(squashfs ext4 jbd2 mbcache.ko fat)/'
mutate "modules-load.d/airlock.conf loads a network" rootfs/etc/modules-load.d/airlock.conf '$a vfat'
mutate "fstab does not mount the state partition nosuid,noexec" rootfs/etc/fstab 's/nosuid,nodev,noexec,data=journal/rw,data=journal/'
mutate "a unit in the recipe starts a getty" rootfs/etc/systemd/system/airlock-selftest.service 's#^ExecStart=.*#ExecStart=/sbin/agetty tty1#'
mutate "airlock-appliance-serial.service lacks ConditionKernelCommandLine=airlock.console=ttyS0" rootfs/etc/systemd/system/airlock-appliance-serial.service '/^ConditionKernelCommandLine=/d'
mutate "airlock-appliance.service lacks ConditionKernelCommandLine=!airlock.console=ttyS0" rootfs/etc/systemd/system/airlock-appliance.service '/^ConditionKernelCommandLine=/d'
mutate "airlock-appliance-serial.service lacks TTYPath=/dev/ttyS0" rootfs/etc/systemd/system/airlock-appliance-serial.service 's#^TTYPath=.*#TTYPath=/dev/tty1#'
mutate "airlock-appliance-serial.service differs from airlock-appliance.service beyond the terminal" rootfs/etc/systemd/system/airlock-appliance-serial.service 's/^PrivateNetwork=yes$/PrivateNetwork=no/'
mutate "an appliance unit starts it with a flag that bypasses" rootfs/etc/systemd/system/airlock-appliance-serial.service 's#^ExecStart=.*#& --dev#'
mutate "airlock-appliance-serial.service sets more than TERM" rootfs/etc/systemd/system/airlock-appliance-serial.service 's#^Environment=.*#& AIRLOCK_X=1#'
mutate "airlock-appliance-serial.service is missing" rootfs/etc/systemd/system/airlock-appliance-serial.service DELETE
mutate "airlock-selftest.service does not run before both appliance units" rootfs/etc/systemd/system/airlock-selftest.service 's/^Before=.*/Before=airlock-appliance.service/'
mutate "cmdline.txt has airlock.console=" cmdline.txt '$a airlock.console=ttyS0'
mutate "customize.sh does not enable the appliance (tty1 and serial)" customize.sh 's/ airlock-appliance-serial.service / /'
((status == 0)) && echo "check-recipe --self-test: every break was reported"
exit $status
