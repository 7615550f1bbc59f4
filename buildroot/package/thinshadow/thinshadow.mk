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

# The commented example settings (an image's own overlay may replace it), the
# first boot's access modes from the Config.in choices, and the script that
# sets them before the agent's first start.
define THINSHADOW_INSTALL_DEFAULTS
	$(INSTALL) -D -m 0644 $(THINSHADOW_PKGDIR)/thinshadow.toml \
		$(TARGET_DIR)/etc/thinshadow.toml
	$(INSTALL) -D -m 0755 $(THINSHADOW_PKGDIR)/thinshadow-modes \
		$(TARGET_DIR)/usr/libexec/thinshadow-modes
	mkdir -p $(TARGET_DIR)/etc/default
	printf 'THINSHADOW_MANAGEMENT_MODE=%s\nTHINSHADOW_REMOTE_SCREEN_MODE=%s\n' \
		$(call qstrip,$(BR2_PACKAGE_THINSHADOW_MANAGEMENT_MODE)) \
		$(call qstrip,$(BR2_PACKAGE_THINSHADOW_REMOTE_SCREEN_MODE)) \
		> $(TARGET_DIR)/etc/default/thinshadow
endef
THINSHADOW_POST_INSTALL_TARGET_HOOKS += THINSHADOW_INSTALL_DEFAULTS

define THINSHADOW_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(THINSHADOW_PKGDIR)/S99thinshadow \
		$(TARGET_DIR)/etc/init.d/S99thinshadow
endef

define THINSHADOW_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(THINSHADOW_PKGDIR)/thinshadow.service \
		$(TARGET_DIR)/usr/lib/systemd/system/thinshadow.service
endef

$(eval $(cargo-package))
