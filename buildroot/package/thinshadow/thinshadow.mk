################################################################################
#
# thinshadow
#
################################################################################

# Built from the checkout this BR2_EXTERNAL tree is part of (its parent
# directory is the repository root). For releases, replace VERSION, SITE
# and SITE_METHOD with the release version and the site of its tarballs
# and add a thinshadow.hash: the download step then vendors the crates.
THINSHADOW_VERSION = local
THINSHADOW_SITE = $(realpath $(BR2_EXTERNAL_THINSHADOW_PATH)/..)
THINSHADOW_SITE_METHOD = local
THINSHADOW_LICENSE = MIT or Apache-2.0
THINSHADOW_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE
THINSHADOW_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target \
	--exclude /board/qemu-aarch64-virt/cache \
	--exclude /board/qemu-aarch64-virt/out

# A local (or overridden) source has no download step, so nothing has
# vendored the crates yet: vendor them before the configure step (when
# host-rustc exists), as the cargo download post-process does. This
# needs crates.io, or a $(BR_CARGO_HOME) that already holds the crates.
define THINSHADOW_CARGO_VENDOR
	$(if $(THINSHADOW_OVERRIDE_SRCDIR), \
		mkdir -p $(@D)/.cargo $(BR_CARGO_HOME) && \
		cd $(@D) && $(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
			flock $(BR_CARGO_HOME)/.br-lock \
			cargo vendor --locked VENDOR > $(@D)/.cargo/config.toml)
endef
THINSHADOW_PRE_CONFIGURE_HOOKS += THINSHADOW_CARGO_VENDOR

define THINSHADOW_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(THINSHADOW_PKGDIR)/S99thinshadow \
		$(TARGET_DIR)/etc/init.d/S99thinshadow
endef

define THINSHADOW_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(THINSHADOW_PKGDIR)/thinshadow.service \
		$(TARGET_DIR)/usr/lib/systemd/system/thinshadow.service
endef

$(eval $(cargo-package))
