#!/bin/sh
# Installs everything postie needs to build and to run its whole test suite
# on Debian 12, as root.  Safe to run again.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    build-essential autoconf automake pkg-config \
    libesmtp-dev libconfuse-dev libcmocka-dev libssl-dev \
    openssl ca-certificates python3-aiosmtpd mandoc man-db \
    php-cli php-symfony-mailer git git-email bsd-mailx util-linux \
    nodejs npm
# Nodemailer for the caller tests, from the npm registry, into the source tree
# (ignored by git).
srcdir=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$srcdir/tests/callers/package.json" ] && [ ! -d "$srcdir/tests/callers/node_modules/nodemailer" ]; then
    (cd "$srcdir/tests/callers" && npm install --no-audit --no-fund --silent)
fi
