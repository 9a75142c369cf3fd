#!/usr/bin/env bash
# Debian packages some tests drive as real programs: espeak-ng (speech for the assistant's
# end-to-end test, `guimo assistant --say`) and chromium (the console's Playwright tests; never
# Playwright's own browser download). Source it (`. .ci/debian.sh`). Installs only what is missing,
# only as root with apt-get; never fatal: without a package, the tests that need it skip and say why.

_guimo_debian() {
  local want=() pkg
  for pkg in espeak-ng chromium; do
    command -v "$pkg" >/dev/null 2>&1 || want+=("$pkg")
  done
  [ "${#want[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "debian.sh: missing ${want[*]} and cannot install them (not root or no apt-get)" >&2
    return 1
  fi
  echo "debian.sh: installing ${want[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}
_guimo_debian || echo "debian.sh: continuing without ${want[*]:-some packages}" >&2
unset -f _guimo_debian
