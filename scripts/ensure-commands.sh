#!/usr/bin/env bash
# Makes sure each named command exists, installing its Debian package with
# apt-get when it is missing, then checks again. Arguments: command=package ...
# Exits non-zero, naming what is missing, when a command is still absent.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

missing=()
for pair in "$@"; do
  command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-commands: installing ${missing[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # A failure here is reported by the check below, with the command's name.
  $SUDO apt-get update -qq || echo "ensure-commands: apt-get update failed" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null ||
    echo "ensure-commands: apt-get install ${missing[*]} failed" >&2
fi

status=0
for pair in "$@"; do
  if ! command -v "${pair%%=*}" >/dev/null 2>&1; then
    echo "ensure-commands: ${pair%%=*} is still missing (Debian package ${pair#*=})" >&2
    status=1
  fi
done
exit $status
