#!/usr/bin/env bash
# test/tls/mkcerts.sh DIR [IP...] - a test PKI made with certtool, at test time.
#
# Each DIR/<name>/ is a credentials directory as QEMU's tls-creds-x509 (and
# `lockstep migrate --tls-creds`) reads it: ca-cert.pem, server-cert.pem,
# server-key.pem, client-cert.pem, client-key.pem. Every one trusts the good
# CA; what differs is the certificates it presents:
#   good      of the good CA: server dst.lockstep.test (and 127.0.0.1 and
#             each IP given), client src.lockstep.test
#   wrongca   of another CA, same names
#   expired   of the good CA, same names, valid only in 2020
#   intruder  of the good CA, named intruder.lockstep.test
# ECDSA P-256 keys: generated at once (RSA keys cost seconds here).
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"
cd "$dir"
ct() { certtool "$@" >/dev/null 2>certtool.log || { cat certtool.log >&2; exit 1; }; }
key() { ct --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$1"; }

ca() {  # ca NAME
  key "$1-ca-key.pem"
  printf 'cn = "lockstep test CA %s"\nca\ncert_signing_key\nexpiration_days = 2\n' "$1" >"$1-ca.tmpl"
  ct --generate-self-signed --load-privkey "$1-ca-key.pem" --template "$1-ca.tmpl" \
     --outfile "$1-ca-cert.pem"
}
ca good
ca other

ips=(127.0.0.1 "$@")
cert() {  # cert OUTDIR CA KIND(server|client) NAME VALIDITY
  local out=$1 ca=$2 kind=$3 name=$4 validity=$5
  key "$out/$kind-key.pem"
  {
    printf 'cn = "%s"\ndns_name = "%s"\nsigning_key\nencryption_key\n' "$name" "$name"
    if [ "$kind" = server ]; then
      echo tls_www_server
      for ip in "${ips[@]}"; do printf 'ip_address = "%s"\n' "$ip"; done
    else
      echo tls_www_client
    fi
    echo "$validity"
  } >"$out/$kind.tmpl"
  ct --generate-certificate --load-privkey "$out/$kind-key.pem" \
     --load-ca-certificate "$ca-ca-cert.pem" --load-ca-privkey "$ca-ca-key.pem" \
     --template "$out/$kind.tmpl" --outfile "$out/$kind-cert.pem"
  rm "$out/$kind.tmpl"
}
valid='expiration_days = 2'
old=$'activation_date = "2020-01-01 00:00:00 UTC"\nexpiration_date = "2020-12-31 00:00:00 UTC"'
creds() {  # creds NAME CA SERVER_NAME CLIENT_NAME VALIDITY
  mkdir -p "$1"
  cp good-ca-cert.pem "$1/ca-cert.pem"
  cert "$1" "$2" server "$3" "$5"
  cert "$1" "$2" client "$4" "$5"
}
creds good good dst.lockstep.test src.lockstep.test "$valid"
creds wrongca other dst.lockstep.test src.lockstep.test "$valid"
creds expired good dst.lockstep.test src.lockstep.test "$old"
creds intruder good intruder.lockstep.test intruder.lockstep.test "$valid"
rm -f certtool.log ./*.tmpl
