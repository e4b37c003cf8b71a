#!/usr/bin/env bash
# The test suite makes its fixture keystores with Java's keytool and checks key bytes with a small
# Java program; the server tests make their TLS certificates with openssl; the pkcs11 provider's tests
# run against a throwaway SoftHSM2 token (test/helpers/softHsm.ts); the web console's end-to-end tests
# drive Debian's Chromium with playwright-core (no browser download). Install what is missing from
# Debian's packages (CI machines are Debian and run as root); otherwise say what is needed and fail.
set -euo pipefail
missing=()
if ! command -v keytool >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
  missing+=(default-jdk-headless)
fi
if ! command -v openssl >/dev/null 2>&1; then
  missing+=(openssl)
fi
if ! command -v softhsm2-util >/dev/null 2>&1; then
  missing+=(softhsm2)
fi
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "the tests need Java's keytool and java, openssl, SoftHSM2 and Chromium (e.g. apt-get install ${missing[*]})" >&2
exit 1
