#!/usr/bin/env bash
# Install the Debian packages Xiuhua needs, if any are missing.
#
#   scripts/bootstrap.sh            python3, python3-venv, openssl, mosquitto, mosquitto-clients,
#                                   influxdb, victoria-metrics, postgresql
#   scripts/bootstrap.sh --python   only what `make venv` needs: python3 and python3-venv
#   scripts/bootstrap.sh --browser  everything, plus chromium (dashboard end-to-end tests)
#   scripts/bootstrap.sh --dry-run  say what is missing and the command that installs it; no change
#
# Quiet and idempotent: prints nothing and exits 0 when everything is present. As root it runs
# `apt-get update` once and `apt-get install -y --no-install-recommends` for what is missing;
# otherwise it prints the exact command to run and exits 1.
#
# The packages may start system daemons (an influxdb service on port 8086, mosquitto on 1883).
# Xiuhua never uses them: its tests and `xiuhua services up` start private servers on free ports.
set -euo pipefail

# A fresh Debian has python3 but not its venv module: `python3 -m venv` then leaves a .venv
# without pip ("No module named pip"). python3-venv brings ensurepip, which makes pip.
python_packages=(python3 python3-venv)
packages=("${python_packages[@]}" openssl mosquitto mosquitto-clients influxdb victoria-metrics
          postgresql)
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --python) packages=("${python_packages[@]}") ;;
    --browser) packages+=(chromium) ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap.sh: unknown option '$arg' (use --python, --browser, --dry-run or --help)" >&2
       exit 2 ;;
  esac
done

# What proves each package works; a package counts as present only if dpkg has it and this holds.
declare -A works=(
  [python3]='command -v python3'
  [python3-venv]='python3 -c "import ensurepip, venv"'
  [openssl]='command -v openssl'
  [mosquitto]='command -v /usr/sbin/mosquitto'
  [mosquitto-clients]='command -v mosquitto_pub'
  [influxdb]='command -v influxd'
  [victoria-metrics]='command -v victoria-metrics'
  [chromium]='command -v chromium'
  [postgresql]='command -v initdb'
)

installed() {  # on a system without dpkg (not Debian) only the check of what works counts
  ! command -v dpkg >/dev/null 2>&1 || dpkg -s "$1" >/dev/null 2>&1
}

missing=()
# Debian keeps PostgreSQL's binaries off PATH, under /usr/lib/postgresql/<version>/bin.
PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ':')"
for pkg in "${packages[@]}"; do
  if ! installed "$pkg" || ! eval "${works[$pkg]}" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

command_line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$dry_run" -eq 1 ] || [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap.sh: missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  sudo sh -c '$command_line'" >&2
  exit 1
fi

echo "bootstrap.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# A package present but broken (a python3-venv whose files were removed) is reinstalled.
apt-get install -y -qq --no-install-recommends --reinstall "${missing[@]}"
