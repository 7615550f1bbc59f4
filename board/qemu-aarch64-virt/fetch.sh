#!/usr/bin/env bash
# Fetch the guest's kernel and userland from Debian (arm64), unpack them, run depmod.
#
# Usage: board/qemu-aarch64-virt/fetch.sh [--refresh]
#
#   linux-image-<ver>-arm64  newest version the mirror lists that actually downloads
#   busybox-static (arm64)
#
# apt-get runs under a private APT_CONFIG (APT::Architecture arm64, its own lists, state and cache under
# cache/apt), so the host's dpkg is never given a foreign architecture. Sources and keys are the host's.
# Everything lands in board/qemu-aarch64-virt/cache/ (gitignored); once fetched, a second run uses the
# cache and needs no network. --refresh resolves the kernel version again and re-downloads.
#
# Result (also printed): cache/current.env with KVER, VMLINUZ, MODROOT (root of lib/modules/KVER), BUSYBOX.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/cache
ENV_FILE=$CACHE/current.env

log() { echo "fetch: $*" >&2; }
die() { log "error: $*"; exit 1; }

refresh=0
[[ ${1:-} == --refresh ]] && refresh=1

cached_ok() {
    [[ -f $ENV_FILE ]] || return 1
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    [[ -f ${VMLINUZ:-} && -f ${BUSYBOX:-} && -f ${MODROOT:-}/lib/modules/${KVER:-}/modules.dep ]]
}

if ((!refresh)) && cached_ok; then
    log "using cached kernel $KVER (run with --refresh to look for a newer one)"
    cat "$ENV_FILE"
    exit 0
fi

for tool in apt-get apt-cache dpkg-deb depmod; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install apt dpkg kmod)"
done

mkdir -p "$CACHE/debs"
# shellcheck source=SCRIPTDIR/apt.sh
. "$HERE/apt.sh"
board_apt_config "$CACHE"
log "apt-get update (arm64 lists, private state under cache/apt)"
board_apt_update

# Candidate kernels: linux-image-<ver>-arm64 with an ABI (6.1.0-56) or +debN (6.12.117+deb12) version;
# not the -rt, -cloud, -unsigned or -dbg flavours, nor metapackages such as linux-image-6.12-arm64.
mapfile -t kernels < <(apt-cache search --names-only '^linux-image-[0-9].*-arm64$' | awk '{print $1}' |
    grep -E '^linux-image-[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9]+|\+deb[0-9]+)-arm64$' | sort -rV)
((${#kernels[@]})) || die "no linux-image-<ver>-arm64 in the arm64 lists (is a Debian mirror in the host's sources?)"
log "kernels listed: ${kernels[*]}"

cd "$CACHE/debs"
kpkg=
for k in "${kernels[@]}"; do
    log "downloading $k"
    if timeout 900 apt-get -q download "$k" >&2; then
        kpkg=$k
        break
    fi
    log "$k did not download; trying the next one"
done
[[ -n $kpkg ]] || die "none of the listed kernels downloaded"
log "downloading busybox-static"
timeout 300 apt-get -q download busybox-static >&2 || die "busybox-static (arm64) did not download"

kdeb=$(find "$CACHE/debs" -name "${kpkg}_*_arm64.deb" | sort -V | tail -n1)
bdeb=$(find "$CACHE/debs" -name 'busybox-static_*_arm64.deb' | sort -V | tail -n1)

KVER=${kpkg#linux-image-}
MODROOT=$CACHE/root-$KVER
rm -rf "$MODROOT.tmp"
mkdir -p "$MODROOT.tmp"
log "unpacking $(basename "$kdeb")"
dpkg-deb -x "$kdeb" "$MODROOT.tmp"
# Debian 12 ships /lib/modules; newer releases /usr/lib/modules. depmod -b wants BASE/lib/modules.
if [[ ! -d $MODROOT.tmp/lib/modules/$KVER && -d $MODROOT.tmp/usr/lib/modules/$KVER ]]; then
    mkdir -p "$MODROOT.tmp/lib"
    ln -s ../usr/lib/modules "$MODROOT.tmp/lib/modules"
fi
[[ -d $MODROOT.tmp/lib/modules/$KVER ]] || die "$kdeb has no lib/modules/$KVER"
vmlinuz=$(find "$MODROOT.tmp/boot" -name "vmlinuz-$KVER" | head -n1)
[[ -n $vmlinuz ]] || die "$kdeb has no boot/vmlinuz-$KVER"
log "depmod -b for $KVER"
depmod -b "$MODROOT.tmp" "$KVER"
rm -rf "$MODROOT"
mv "$MODROOT.tmp" "$MODROOT"

BBROOT=$CACHE/busybox-root
rm -rf "$BBROOT"
mkdir -p "$BBROOT"
dpkg-deb -x "$bdeb" "$BBROOT"
BUSYBOX=$BBROOT/bin/busybox
[[ -f $BUSYBOX ]] || die "$bdeb has no bin/busybox"

# Keep only the debs in use, so the cache does not grow with every kernel ABI bump.
find "$CACHE/debs" -name '*.deb' ! -path "$kdeb" ! -path "$bdeb" -delete

# Only the kernel in use stays unpacked.
find "$CACHE" -maxdepth 1 -name 'root-*' ! -path "$MODROOT" -exec rm -rf {} +

{
    printf 'KVER=%q\n' "$KVER"
    printf 'VMLINUZ=%q\n' "$MODROOT/boot/vmlinuz-$KVER"
    printf 'MODROOT=%q\n' "$MODROOT"
    printf 'BUSYBOX=%q\n' "$BUSYBOX"
} >"$ENV_FILE"
log "done"
cat "$ENV_FILE"
