#!/usr/bin/env bash
# Installs, from Debian's packages, the programs procwall's tests use:
# netfilter tools (nft, iptables), iproute2 (ip, ss), forkstat, iperf3.
# It installs only what is missing, and only when it can (root + apt-get);
# otherwise it says what is missing and leaves the privileged tests to skip
# (or to fail, under PROCWALL_TEST_PRIVILEGED=1).
set -euo pipefail

# command -> Debian package
declare -A want=(
  [nft]=nftables
  [iptables]=iptables
  [ip]=iproute2
  [ss]=iproute2
  [forkstat]=forkstat
  [iperf3]=iperf3
)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
# chromium is needed only by the provenance HTML test.
if [ "${PROCWALL_WITH_BROWSER:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]} (need root and apt-get to install them)" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
