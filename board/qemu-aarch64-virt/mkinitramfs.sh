#!/usr/bin/env bash
# Pack the board's initramfs: busybox, kernel modules, the thinshadow binary and /init.
#
# Usage: board/qemu-aarch64-virt/mkinitramfs.sh [-o OUT.cpio.gz] [--extra DIR]... [--module M]...
#        THINSHADOW_BINARY
#
# Modules (with every dependency from modules.dep, in load order; those built into the kernel are
# skipped): virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci drm drm_kms_helper drm_shmem_helper
# virtio_dma_buf virtio-gpu failover net_failover virtio_net uinput evdev virtio_input (the virtio
# keyboard), plus bochs (for the 1920x1080 bochs-display). BOARD_MODULES overrides the list;
# --module M adds one (M may name alternatives, A|B: the first this kernel has, e.g.
# 'cirrus|cirrus-qemu' for cirrus-vga, renamed in newer kernels). Compressed modules (.ko.xz/.zst/.gz) are
# unpacked on the host so busybox insmod can load them. --extra DIR copies DIR's tree into the image
# (tests use it for pictures). Default output: board/qemu-aarch64-virt/out/initramfs.cpio.gz.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEFAULT_MODULES="virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci drm drm_kms_helper drm_shmem_helper
virtio_dma_buf virtio-gpu failover net_failover virtio_net uinput evdev virtio_input bochs"
MODULES=${BOARD_MODULES:-$DEFAULT_MODULES}

log() { echo "mkinitramfs: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

out=$HERE/out/initramfs.cpio.gz
extras=()
bin=
while (($#)); do
    case $1 in
    -o) out=$2; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    --module) MODULES+=" $2"; shift 2 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) [[ -z $bin ]] || die "one binary only"; bin=$1; shift ;;
    esac
done
[[ -n $bin ]] || usage
[[ -f $bin ]] || die "$bin: no such file"
readelf -h "$bin" 2>/dev/null | grep -q 'Machine:.*AArch64' || die "$bin is not an aarch64 ELF binary"
if readelf -lW "$bin" | grep -q 'program interpreter'; then
    die "$bin is dynamically linked; the initramfs has no libc (build with scripts/cross-build.sh)"
fi
for tool in cpio gzip depmod; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install cpio gzip kmod)"
done

# Kernel, modules and busybox from fetch.sh (cached after the first run).
env_out=$("$HERE/fetch.sh")
eval "$(grep -E '^(KVER|VMLINUZ|MODROOT|BUSYBOX)=' <<<"$env_out")"
moddir=$MODROOT/lib/modules/$KVER

# --- resolve modules and their dependencies from modules.dep ---
declare -A path_of deps_of seen
while IFS= read -r line; do
    p=${line%%:*}
    name=$(basename "$p")
    name=${name%%.ko*}
    path_of[${name//-/_}]=$p
    deps_of[$p]=${line#*: }
    [[ $line == *": "* ]] || deps_of[$p]=
done <"$moddir/modules.dep"
declare -A builtin
while IFS= read -r p; do
    name=$(basename "$p")
    name=${name%%.ko*}
    builtin[${name//-/_}]=1
done <"$moddir/modules.builtin"

order=()
add_module() { # path
    local p=$1 i
    [[ -n ${seen[$p]:-} ]] && return
    seen[$p]=1
    local -a ds
    read -r -a ds <<<"${deps_of[$p]}"
    for ((i = ${#ds[@]} - 1; i >= 0; i--)); do add_module "${ds[i]}"; done
    order+=("$p")
}
for alternatives in $MODULES; do
    found=
    IFS='|' read -ra names <<<"$alternatives"
    for m in "${names[@]}"; do
        key=${m//-/_}
        if [[ -n ${path_of[$key]:-} ]]; then
            add_module "${path_of[$key]}"
        elif [[ -n ${builtin[$key]:-} ]]; then
            log "$m is built into $KVER"
        else
            continue
        fi
        found=1
        break
    done
    [[ -n $found ]] || die "module $alternatives is neither in modules.dep nor modules.builtin of $KVER"
done

# --- stage ---
mkdir -p "$(dirname "$out")"
stage=$(dirname "$out")/initramfs.d
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc/thinshadow-board,var/lib/thinshadow}
mkdir -p "$stage/lib/modules/$KVER"
install -m 0755 "$BUSYBOX" "$stage/bin/busybox"
install -m 0755 "$HERE/init" "$stage/init"
install -m 0755 "$bin" "$stage/usr/bin/thinshadow"
# The settings file the Buildroot package ships (all defaults, commented): the board runs as shipped.
install -m 0644 "$HERE/../../buildroot/package/thinshadow/thinshadow.toml" "$stage/etc/thinshadow.toml"
install -D -m 0755 "$HERE/../../buildroot/package/thinshadow/thinshadow-modes" "$stage/usr/libexec/thinshadow-modes"
if [[ $(id -u) == 0 ]]; then
    mknod -m 600 "$stage/dev/console" c 5 1
fi

: >"$stage/etc/thinshadow-board/modules.load"
for p in "${order[@]}"; do
    base=$(basename "$p")
    dst=/lib/modules/$KVER/${base%%.ko*}.ko
    case $base in
    *.ko) cp "$moddir/$p" "$stage$dst" ;;
    *.ko.xz) xz -dc "$moddir/$p" >"$stage$dst" ;;
    *.ko.zst) zstd -qdc "$moddir/$p" >"$stage$dst" ;;
    *.ko.gz) gzip -dc "$moddir/$p" >"$stage$dst" ;;
    *) die "unknown module format: $p" ;;
    esac
    echo "$dst" >>"$stage/etc/thinshadow-board/modules.load"
done
log "kernel $KVER, modules: $(for p in "${order[@]}"; do b=$(basename "$p"); printf '%s ' "${b%%.ko*}"; done)"

for e in "${extras[@]}"; do
    [[ -d $e ]] || die "--extra $e is not a directory"
    cp -a "$e/." "$stage/"
done

(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -6n >"$out.tmp"
mv "$out.tmp" "$out"
log "$out: $(stat -c %s "$out") bytes"
echo "$out"
