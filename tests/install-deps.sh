#!/bin/sh
# Installs everything postie needs to build and to run its whole test suite
# on Debian 12, as root.  Safe to run again.
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs="build-essential autoconf automake pkg-config
      libesmtp-dev libconfuse-dev libcmocka-dev libssl-dev
      openssl ca-certificates python3-aiosmtpd mandoc man-db
      php-cli php-symfony-mailer git git-email libmailtools-perl bsd-mailx util-linux"
# Node.js and npm run the Nodemailer caller test.  A machine that already has
# a Node.js with its own npm (NodeSource's package bundles it and conflicts
# with Debian's npm) keeps it.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $pkgs
# Nodemailer for the caller tests, from the npm registry, into the source tree
# (ignored by git).
srcdir=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$srcdir/tests/callers/node_modules/nodemailer" ]; then
    (cd "$srcdir/tests/callers" && npm install --no-audit --no-fund --silent)
fi
