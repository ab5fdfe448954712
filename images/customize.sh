#!/usr/bin/env bash
# mmdebstrap customize hook: turns the installed package tree in $1 into the
# appliance root. Runs on the build host as root; reads the recipe from
# AIRLOCK_IMAGES and writes the kernel, initramfs and package manifest to
# AIRLOCK_WORK.
#
# customize.sh --finish ROOT runs after mmdebstrap has cleaned up (it needs
# apt and dpkg for that): it removes what strip.txt lists, setuid bits and
# files that would differ between builds.
set -euo pipefail
if [[ ${1:-} == --finish ]]; then
  finish=1
  root=$2
else
  finish=0
  root=$1
fi
: "${AIRLOCK_IMAGES:?}" "${AIRLOCK_WORK:?}" "${AIRLOCK_BIN:?}" "${SOURCE_DATE_EPOCH:?}"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$@"; }

kvers=("$root"/usr/lib/modules/*)
((${#kvers[@]} == 1)) || { echo "customize: want exactly one kernel, found ${#kvers[@]}" >&2; exit 1; }
kver=$(basename "${kvers[0]}")
strip_list() {
  grep -v '^\s*#' "$AIRLOCK_IMAGES/strip.txt" | grep -v '^\s*$' | sed "s/@KVER@/$kver/g"
}

if ((finish)); then
  # The folders the kept-package mount point left (they name a path on the
  # build machine, which must not change the image).
  for d in $(grep -rhoE 'file://[^ ]+' "$root/etc/apt/sources.list" "$root/etc/apt/sources.list.d" 2>/dev/null | sed 's#^file://##' | sort -u); do
    while [[ $d == /?* && $d != / && -d $root$d ]] && rmdir "$root$d" 2>/dev/null; do d=$(dirname "$d"); done
  done

  # Nothing to run packages, compilers or logins with at run time.
  while read -r p; do
    [[ $p == /usr/lib/modules/* ]] && continue
    if [[ $p == */\* ]]; then
      rm -rf "$root${p%\*}"* 2>/dev/null || true
      mkdir -p "$root${p%/\*}"
    else
      rm -rf "$root$p"
    fi
  done < <(strip_list)
  # No setuid or setgid programs.
  find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +
  # Files that would differ between two builds.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # What mmdebstrap leaves in /run and /tmp, and the kernel symlinks into /boot.
  rm -rf "${root:?}"/run/* "${root:?}"/tmp/* "$root"/initrd.img* "$root"/vmlinuz*
  # Mount points of the tmpfs folders in fstab (again: the loop above may
  # have removed an empty one on the kept-package path).
  mkdir -p "$root/var/lib/usbguard" "$root/var/lib/systemd" "$root/var/cache" "$root/var/tmp" "$root/var/log" "$root/home"
  chmod 1777 "$root/var/tmp"
  exit 0
fi

# Kernel features that must be modules (so that removing them removes them)
# or absent: network drivers and removable-media filesystems.
config="$root/boot/config-$kver"
for opt in VFAT_FS MSDOS_FS FAT_FS EXFAT_FS NTFS_FS NTFS3_FS ISO9660_FS UDF_FS HFS_FS HFSPLUS_FS \
  BTRFS_FS XFS_FS F2FS_FS FUSE_FS NFS_FS CIFS \
  E1000 E1000E VIRTIO_NET R8169 IGB IGC IXGBE IWLWIFI ATH9K ATH10K_PCI BT USB_USBNET; do
  if grep -q "^CONFIG_$opt=y" "$config"; then
    echo "customize: CONFIG_$opt is built into kernel $kver; removing its module would not remove it" >&2
    exit 1
  fi
done

# The recipe's files, owned by root, directories 0755 and files 0644;
# hooks and scripts executable.
tar -C "$AIRLOCK_IMAGES/rootfs" --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' \
  --mtime="@$SOURCE_DATE_EPOCH" --sort=name -cf - . | tar -C "$root" --no-same-owner -xf -
chmod 0755 "$root/etc/initramfs-tools/hooks/airlock-verity" \
  "$root/etc/initramfs-tools/scripts/local-top/airlock-verity"
install -m 0755 "$AIRLOCK_BIN" "$root/usr/bin/airlock-appliance"
# usbguard refuses rule and configuration files others can read.
chmod 0600 "$root/etc/usbguard/rules.conf" "$root/etc/usbguard/usbguard-daemon.conf"
# Mount points of the tmpfs folders in fstab.
mkdir -p "$root/var/lib/usbguard" "$root/var/lib/systemd" "$root/var/cache" "$root/var/tmp" "$root/var/log" "$root/home"

# The unprivileged user the appliance runs as (fixed ids, no password, no
# shell) and the group that may read USB block devices.
grep -q '^airlock:' "$root/etc/passwd" || {
  echo 'airlock:x:900:900:Airlock appliance:/var/lib/airlock:/usr/sbin/nologin' >>"$root/etc/passwd"
  echo 'airlock:!:1::::::' >>"$root/etc/shadow"
  echo 'airlock:x:900:' >>"$root/etc/group"
  echo 'airlock:!::' >>"$root/etc/gshadow"
  echo 'airlock-usb:x:901:' >>"$root/etc/group"
  echo 'airlock-usb:!::' >>"$root/etc/gshadow"
}
grep -q '^tss:' "$root/etc/group" || {
  echo 'tss:x:902:' >>"$root/etc/group"
  echo 'tss:!::' >>"$root/etc/gshadow"
}
mkdir -p "$root/var/lib/airlock"
chmod 0700 "$root/var/lib/airlock"
chown 900:900 "$root/var/lib/airlock"
# The TPM resource manager device for the tss group (tpm2-tools' rule,
# which this image does not install).
echo 'KERNEL=="tpmrm[0-9]*", TAG+="systemd", MODE="0660", GROUP="tss"' >"$root/etc/udev/rules.d/60-airlock-tpm.rules"

# Services: the appliance on tty1, its self-test on the console, the module
# lock; no getty, no shell, no first-boot questions, no random seed file on
# the read-only root.
in_root systemctl enable airlock-appliance.service airlock-appliance-serial.service airlock-selftest.service airlock-modules-lock.service usbguard.service >/dev/null
in_root systemctl disable pcscd.socket >/dev/null 2>&1 || true
in_root systemctl enable pcscd.socket >/dev/null
for u in getty@.service serial-getty@.service autovt@.service console-getty.service container-getty@.service \
  debug-shell.service rescue.service emergency.service systemd-firstboot.service systemd-random-seed.service \
  getty.target rescue.target emergency.target ctrl-alt-del.target apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer; do
  ln -sfn /dev/null "$root/etc/systemd/system/$u"
done
rm -rf "$root/etc/systemd/system/getty.target.wants"

# Remove network drivers and removable-media filesystems, then re-index.
keep_fs=(squashfs ext4 jbd2 mbcache.ko)
while read -r p; do
  if [[ $p == "/usr/lib/modules/$kver/kernel/fs/*" ]]; then
    for f in "$root/usr/lib/modules/$kver/kernel/fs/"*; do
      b=$(basename "$f")
      [[ " ${keep_fs[*]} " == *" $b "* ]] || rm -rf "$f"
    done
  elif [[ $p == /usr/lib/modules/* ]]; then
    rm -rf "$root$p"
  fi
done < <(strip_list)
in_root depmod -a "$kver"

# The initramfs, reproducibly (SOURCE_DATE_EPOCH), with the verity hook.
rm -f "$root/boot/initrd.img-$kver"
in_root update-initramfs -c -k "$kver" >/dev/null
install -m 0644 "$root/boot/vmlinuz-$kver" "$AIRLOCK_WORK/vmlinuz"
install -m 0644 "$root/boot/initrd.img-$kver" "$AIRLOCK_WORK/initrd.img"
echo "$kver" >"$AIRLOCK_WORK/kernel-version"

# The installed package set, for the manifest.
in_root dpkg-query -W -f='${Package} ${Version} ${Architecture}\n' | LC_ALL=C sort >"$AIRLOCK_WORK/installed.txt"

