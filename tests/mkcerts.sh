#!/bin/sh
# mkcerts.sh - a throwaway certificate authority for the integration tests.
#
#   mkcerts.sh ca DIR                       DIR/ca.pem, DIR/ca.key (a new CA)
#   mkcerts.sh issue DIR NAME SAN [SAN...]  DIR/NAME.pem, DIR/NAME.key signed by DIR's CA
#   mkcerts.sh self DIR NAME SAN [SAN...]   DIR/NAME.pem, DIR/NAME.key self-signed
#
# SANs are written as openssl wants them: DNS:localhost IP:127.0.0.1 IP:::1.
# EC P-256 keys (fast), one day of validity.
set -eu

usage() {
    echo "usage: mkcerts.sh ca DIR | issue DIR NAME SAN... | self DIR NAME SAN..." >&2
    exit 64
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
mkdir -p "$dir"
umask 077

case $cmd in
ca)
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj "/CN=postie test CA $$" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    ;;
issue | self)
    [ $# -ge 2 ] || usage
    name=$1
    shift
    san=$(printf '%s,' "$@")
    san=${san%,}
    ext="$dir/$name.ext"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
        "$san" >"$ext"
    if [ "$cmd" = self ]; then
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$dir/$name.key" -out "$dir/$name.pem" -days 1 -subj "/CN=$name" \
            -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
            2>/dev/null
    else
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
        openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -out "$dir/$name.pem" -days 1 -extfile "$ext" 2>/dev/null
        rm -f "$dir/$name.csr"
    fi
    rm -f "$ext"
    ;;
*)
    usage
    ;;
esac
