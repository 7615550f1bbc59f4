#!/bin/sh
# Writes $BINARIES_DIR/start-qemu.sh for thinshadow_qemu_aarch64_virt_defconfig:
# virtio-gpu at 1024x768 (fb0), virtio-net with RDP forwarded from
# 127.0.0.1:${RDP_PORT:-3389} on the host, the ext4 root on virtio-blk.
# Uses the host-qemu Buildroot built (BR2_PACKAGE_HOST_QEMU), else PATH's.
set -e

sed "s|@HOST_DIR@|${HOST_DIR}|" >"${BINARIES_DIR}/start-qemu.sh" <<'SCRIPT'
#!/bin/sh
# Boots the thinshadow Buildroot image. RDP: 127.0.0.1:${RDP_PORT:-3389}.
cd "$(dirname "$0")"
PATH="@HOST_DIR@/bin:$PATH"
exec qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 512 -nographic \
	-kernel Image -append "rootwait root=/dev/vda console=ttyAMA0" \
	-drive file=rootfs.ext4,if=none,format=raw,id=hd0 \
	-device virtio-blk-device,drive=hd0 \
	-device virtio-gpu-pci,xres=1024,yres=768 \
	-netdev "user,id=eth0,hostfwd=tcp:127.0.0.1:${RDP_PORT:-3389}-:3389" \
	-device virtio-net-device,netdev=eth0 "$@"
SCRIPT
chmod +x "${BINARIES_DIR}/start-qemu.sh"
