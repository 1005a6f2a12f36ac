#!/usr/bin/env bash
# Install the Debian packages Xiuhua's local servers and tests need, if any are missing.
#
#   scripts/bootstrap.sh            mosquitto, mosquitto-clients, influxdb, victoria-metrics,
#                                   postgresql
#   scripts/bootstrap.sh --browser  the same, plus chromium (for dashboard end-to-end tests)
#
# Quiet and idempotent: prints nothing and exits 0 when everything is present. As root it runs
# `apt-get update` once and `apt-get install -y --no-install-recommends` for what is missing;
# otherwise it prints the exact command to run and exits 1.
#
# The packages may start system daemons (an influxdb service on port 8086, mosquitto on 1883).
# Xiuhua never uses them: its tests and `xiuhua services up` start private servers on free ports.
set -euo pipefail

packages=(mosquitto mosquitto-clients influxdb victoria-metrics postgresql)
case "${1:-}" in
  "") ;;
  --browser) packages+=(chromium) ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "bootstrap.sh: unknown option '$1' (use --browser or --help)" >&2; exit 2 ;;
esac

# The binary each package must provide; a package counts as present only if both hold.
declare -A binary=(
  [mosquitto]=/usr/sbin/mosquitto
  [mosquitto-clients]=mosquitto_pub
  [influxdb]=influxd
  [victoria-metrics]=victoria-metrics
  [chromium]=chromium
  [postgresql]=initdb
)

missing=()
# Debian keeps PostgreSQL's binaries off PATH, under /usr/lib/postgresql/<version>/bin.
PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ':')"
for pkg in "${packages[@]}"; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1 || ! command -v "${binary[$pkg]}" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

command_line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap.sh: missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  sudo sh -c '$command_line'" >&2
  exit 1
fi

echo "bootstrap.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
