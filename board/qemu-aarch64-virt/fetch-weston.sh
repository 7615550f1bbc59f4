#!/usr/bin/env bash
# Fetch Debian's arm64 Weston (DRM backend, its built-in pixman renderer, kiosk-shell) and the
# weston-simple-shm client with exactly the shared libraries they load, for the board check with a
# real compositor as DRM master (scripts/test-board-kms.sh).
#
# Usage: board/qemu-aarch64-virt/fetch-weston.sh [--refresh] [--stage DIR]
#
# Starts from the packages weston and xkb-data, then walks the NEEDED entries (and RUNPATHs) of
#   usr/bin/weston, libweston-*/drm-backend.so, weston/kiosk-shell.so, usr/bin/weston-simple-shm
# and of every library they pull in: a soname not found yet is looked for in the Depends of the
# packages in use, which are downloaded (apt-get download under fetch.sh's private arm64
# APT_CONFIG) and unpacked one directory per package. Packages none of whose files is needed are
# dropped again, so only the Depends of packages in use are followed. Versions are whatever the
# mirror lists now; the result is cached in cache/weston/ (no network on a second run; --refresh
# resolves again).
# --stage DIR copies into DIR (a tree for mkinitramfs.sh --extra): those files, each library under
# its soname, the loader at its program-interpreter path, and xkb-data's keycodes, types, compat,
# symbols and rules/evdev (what xkbcommon needs for a keymap), and weston-board (starts Weston and
# its client in the guest). Prints the tree's size, unpacked and as gzip'd cpio (what the image grows by).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/cache
WC=$CACHE/weston
PKGS=$WC/pkgs
ENV_FILE=$WC/weston.env
FILES=$WC/files
ROOTS=(weston xkb-data)
WANTED=(usr/bin/weston 'usr/lib/*/libweston-*/drm-backend.so' 'usr/lib/*/weston/kiosk-shell.so' usr/bin/weston-simple-shm)
LIBDIRS=(lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib)

log() { echo "fetch-weston: $*" >&2; }
die() { log "error: $*"; exit 1; }

refresh=0
stage=
while (($#)); do
    case $1 in
    --refresh) refresh=1; shift ;;
    --stage) stage=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
    esac
done

# index: PKG_OF[REL] = the package directory (under PKGS) with REL, as a file or a symlink (the
# first one in name order).
declare -A PKG_OF
index() {
    local f p
    PKG_OF=()
    while IFS= read -r -d '' f; do
        f=${f#"$PKGS"/}
        p=${f%%/*}
        [[ -n ${PKG_OF[${f#*/}]:-} ]] || PKG_OF[${f#*/}]=$p
    done < <(find "$PKGS" -mindepth 2 \( -type f -o -type l \) -print0 | sort -z)
}

# real_of PKG REL: REL with the package's symlinks followed (relative or absolute), inside PKG.
real_of() {
    local p=$1 rel=$2 t i
    for ((i = 0; i < 10; i++)); do
        [[ -L $PKGS/$p/$rel ]] || { echo "$rel"; return 0; }
        t=$(readlink "$PKGS/$p/$rel")
        if [[ $t == /* ]]; then rel=${t#/}; else rel=$(realpath -ms --relative-to=/ "/$(dirname "$rel")/$t"); fi
    done
    return 1
}

# closure: lines "PKG REL REAL" for the wanted files and every library they need (REL: where the
# loader looks for it; REAL: the file behind it, in PKG); the sonames not found go to $WC/missing.
closure() {
    local -A done_rel=() missing=()
    local -a queue=() dirs
    local w rel p real line so d found f origin
    index
    for w in "${WANTED[@]}"; do
        # shellcheck disable=SC2231 # $w is a glob
        for f in "$PKGS"/*/$w; do
            [[ -e $f ]] || continue
            queue+=("${f#"$PKGS"/*/}")
        done
    done
    ((${#queue[@]})) || { echo "weston" >"$WC/missing"; return 0; }
    while ((${#queue[@]})); do
        rel=${queue[0]}
        queue=("${queue[@]:1}")
        [[ -z ${done_rel[$rel]:-} ]] || continue
        done_rel[$rel]=1
        p=${PKG_OF[$rel]:-}
        [[ -n $p ]] || continue
        real=$(real_of "$p" "$rel") || die "symlink loop at $p/$rel"
        [[ -f $PKGS/$p/$real ]] || { missing[$rel]=1; continue; }
        echo "$p $rel $real"
        dirs=()
        origin=$(dirname "$real")
        while IFS= read -r line; do
            case $line in
            *'(RUNPATH)'* | *'(RPATH)'*)
                line=${line#*\[}
                line=${line%\]*}
                IFS=: read -r -a f <<<"$line"
                for d in "${f[@]}"; do dirs+=("$(realpath -ms --relative-to=/ "/${d//\$ORIGIN/$origin}")"); done
                ;;
            esac
        done < <(readelf -dW "$PKGS/$p/$real")
        dirs+=("${LIBDIRS[@]}")
        while IFS= read -r so; do
            found=
            for d in "${dirs[@]}"; do
                if [[ -n ${PKG_OF[$d/$so]:-} ]]; then found=$d/$so; break; fi
            done
            if [[ -n $found ]]; then queue+=("$found"); else missing[$so]=1; fi
        done < <(readelf -dW "$PKGS/$p/$real" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
    done
    printf '%s\n' "${!missing[@]}" | sed '/^$/d' | sort >"$WC/missing"
}

cached_ok() {
    [[ -f $ENV_FILE && -s $FILES ]] || return 1
    local p rel real
    while read -r p rel real; do
        [[ -f $PKGS/$p/$real ]] || return 1
    done <"$FILES"
    [[ -d $PKGS/xkb-data/usr/share/X11/xkb ]]
}

# fetch_pkgs NAME...: download and unpack those not unpacked yet (one apt-get for all; one each
# if that fails, so a name that does not download does not stop the rest); false if none was new.
fetch_pkgs() {
    local n deb todo=() batch=0 new=1
    for n in "$@"; do [[ -d $PKGS/$n ]] || todo+=("$n"); done
    ((${#todo[@]})) || return 1
    (cd "$WC/debs" && timeout 600 apt-get -q download "${todo[@]}" >/dev/null 2>"$WC/apt.err") && batch=1
    for n in "${todo[@]}"; do
        if ((!batch)) && ! (cd "$WC/debs" && timeout 300 apt-get -q download "$n" >/dev/null 2>"$WC/apt.err"); then
            log "could not download $n: $(tail -n 1 "$WC/apt.err")"
            mkdir -p "$PKGS/$n"
            continue
        fi
        deb=$(find "$WC/debs" -name "${n}_*.deb" | head -n 1)
        [[ -n $deb ]] || die "apt-get download $n left no ${n}_*.deb"
        # (set -e does not reach here: callers test this function)
        rm -rf "$PKGS/$n.tmp"
        mkdir -p "$PKGS/$n.tmp"
        dpkg-deb -x "$deb" "$PKGS/$n.tmp" || die "could not unpack $deb"
        mv "$PKGS/$n.tmp" "$PKGS/$n" || die "could not move $n into place"
        new=0
    done
    return $new
}

# deps NAME...: their Depends and Pre-Depends (every alternative; virtual names left out).
deps() {
    apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null |
        sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^< ][^ ]*\).*/\2/p' | sed 's/:.*//' | sort -u
}

if ((refresh)) || ! cached_ok; then
    for tool in apt-get apt-cache dpkg-deb readelf realpath; do
        command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install apt dpkg binutils coreutils)"
    done
    # The kernel's fetch first: on a fresh machine it runs apt-get update for the arm64 lists.
    "$HERE/fetch.sh" >/dev/null
    # shellcheck source=SCRIPTDIR/apt.sh
    . "$HERE/apt.sh"
    board_apt_config "$CACHE"
    # Lists as new as the mirror: a cached kernel means fetch.sh did not update them, and a
    # dependency's old version may be gone from the mirror since.
    board_apt_update
    rm -rf "$PKGS" "$WC/debs"
    mkdir -p "$PKGS" "$WC/debs"
    fetch_pkgs "${ROOTS[@]}" || true
    for n in "${ROOTS[@]}"; do
        [[ -n $(ls -A "$PKGS/$n") ]] || die "$n (arm64) did not download"
    done
    log "weston $(dpkg-deb -f "$WC"/debs/weston_*.deb Version)"
    used=("${ROOTS[@]}")
    for ((round = 1; ; round++)); do
        closure >"$FILES.tmp"
        [[ -s $WC/missing ]] || break
        ((round <= 12)) || die "still missing after 12 rounds: $(tr '\n' ' ' <"$WC/missing")"
        mapfile -t cands < <(deps "${used[@]}")
        log "round $round: missing $(tr '\n' ' ' <"$WC/missing")"
        fetch_pkgs "${cands[@]}" || die "no package in the Depends of ${used[*]} has $(tr '\n' ' ' <"$WC/missing")"
        closure >"$FILES.tmp"
        mapfile -t used < <({ printf '%s\n' "${ROOTS[@]}"; cut -d' ' -f1 "$FILES.tmp"; } | sort -u)
    done
    mv "$FILES.tmp" "$FILES"
    # Each wanted file was found (a package that moved one would otherwise show only in the guest).
    for w in "${WANTED[@]}"; do
        # shellcheck disable=SC2053 # $w is a glob
        while read -r _ rel _; do [[ $rel == $w ]] && continue 2; done <"$FILES"
        die "no $w in the packages fetched"
    done
    # Only the packages in use stay.
    mapfile -t used < <({ printf '%s\n' "${ROOTS[@]}"; cut -d' ' -f1 "$FILES"; } | sort -u)
    for d in "$PKGS"/*/; do
        n=$(basename "$d")
        printf '%s\n' "${used[@]}" | grep -qx -- "$n" && continue
        rm -rf "$d"
        rm -f "$WC/debs/${n}_"*.deb
    done
    {
        printf 'WESTON_VERSION=%q\n' "$(dpkg-deb -f "$WC"/debs/weston_*.deb Version)"
        printf 'WESTON_PKGS=%q\n' "$(for n in "${used[@]}"; do printf '%s=%s ' "$n" "$(dpkg-deb -f "$WC/debs/${n}_"*.deb Version)"; done)"
    } >"$ENV_FILE"
    log "done: $(wc -l <"$FILES") files from ${#used[@]} packages"
else
    log "using the cached packages (run with --refresh to resolve the versions again)"
fi
cat "$ENV_FILE"

[[ -n $stage ]] || exit 0
mkdir -p "$stage"
declare -A first
while read -r p rel real; do
    src=$PKGS/$p/$real
    if [[ -n ${first[$src]:-} ]]; then
        mkdir -p "$stage/$(dirname "$rel")"
        ln -sfn "/${first[$src]}" "$stage/$rel"
    else
        install -D -m 0755 "$src" "$stage/$rel"
        first[$src]=$rel
    fi
done <"$FILES"
# The loader where the ELF files ask for it (/lib/ld-linux-aarch64.so.1).
interp=$(readelf -lW "$stage/usr/bin/weston" | sed -n 's/.*program interpreter: \(.*\)\]$/\1/p')
[[ -n $interp ]] || die "usr/bin/weston has no program interpreter"
if [[ ! -e $stage$interp ]]; then
    ld=$(find "$stage/lib" "$stage/usr/lib" -name "$(basename "$interp")" -type f | head -n 1)
    [[ -n $ld ]] || die "no $(basename "$interp") among the libraries"
    mkdir -p "$stage$(dirname "$interp")"
    ln -sfn "${ld#"$stage"}" "$stage$interp"
fi
xkb=usr/share/X11/xkb
mkdir -p "$stage/$xkb/rules"
cp -a "$PKGS/xkb-data/$xkb/"{keycodes,types,compat,symbols} "$stage/$xkb/"
cp -a "$PKGS/xkb-data/$xkb/rules/evdev" "$stage/$xkb/rules/"
install -D -m 0755 "$HERE/weston-board" "$stage/usr/bin/weston-board"
# The size it adds to the initramfs, packed as mkinitramfs.sh packs it.
gz=$( (cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --quiet) | gzip -6n | wc -c)
log "staged in $stage: $(du -sb "$stage" | cut -f1) bytes in $(find "$stage" -type f | wc -l) files, $gz bytes gzip'd"
