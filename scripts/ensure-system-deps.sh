#!/usr/bin/env bash
# The test suite makes its fixture keystores with Java's keytool and checks key bytes with a small
# Java program. Install a JDK from Debian's packages when it is missing (CI machines are Debian and
# run as root); otherwise say what is needed and fail. SoftHSM2 likewise, for the pkcs11 tests.
set -euo pipefail
# The pkcs11 provider's tests run against a throwaway SoftHSM2 token (test/helpers/softHsm.ts).
if ! command -v softhsm2-util >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "softhsm2-util not found: installing softhsm2" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
  else
    echo "the pkcs11 tests need SoftHSM2 (e.g. apt-get install softhsm2)" >&2
    exit 1
  fi
fi
if command -v keytool >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "keytool/java not found: installing default-jdk-headless" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >/dev/null
  exit 0
fi
echo "the tests need Java's keytool and java (e.g. apt-get install default-jdk-headless)" >&2
exit 1
