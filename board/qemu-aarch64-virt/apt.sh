# shellcheck shell=bash
# The private apt setup fetch.sh and fetch-weston.sh share (sourced): board_apt_config CACHE writes
# CACHE/apt/apt.conf (APT::Architecture arm64, its own lists, state and cache under CACHE/apt) and
# exports APT_CONFIG, so the host's dpkg is never given a foreign architecture. Sources and keys are
# the host's. board_apt_update runs apt-get update under it.

board_apt_config() {
    local cache=$1
    mkdir -p "$cache/apt/state/lists/partial" "$cache/apt/cache/archives/partial"
    : >"$cache/apt/state/status"
    cat >"$cache/apt/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$cache/apt/state";
Dir::State::status "$cache/apt/state/status";
Dir::Cache "$cache/apt/cache";
Debug::NoLocking "true";
APT::Sandbox::User "root";
CONF
    export APT_CONFIG=$cache/apt/apt.conf
}

board_apt_update() {
    # A third-party source without arm64 lists may make update complain; what matters is that the
    # Debian packages resolve afterwards.
    timeout 600 apt-get -q update >&2 || echo "warning: apt-get update reported errors; trying with what it got" >&2
}
