#!/bin/sh
# make-pki.sh DIR - a throw-away PKI for the TLS tests, made at test time.
#
#   ca.pem / ca.key            "Sluice Test CA" (our organisation)
#   partner-ca.pem / .key      "Partner Test CA" (another organisation, ECDSA)
#   trusted.pem                both CAs: the tests' TrustedCAFile
#   server.pem / .key          mx.sluice.test, localhost, 127.0.0.1 (by ca)
#   wild.pem / .key            *.sluice.test (by ca)
#   ecdsa.pem / .key           ecdsa.sluice.test, ECDSA key (by ca)
#   partner.pem / .key         client cert naming partner.test (by partner-ca)
#   partner-wrong.pem / .key   client cert naming other.test (by partner-ca)
#   partner-expired.pem / .key partner.test, expired in 2021 (by partner-ca)
#   partner-self.pem / .key    partner.test, self-signed (trusted by nobody)
#   partner-cn.pem / .key      CN=partner.test and no subjectAltName
#   partner-revoked.pem / .key partner.test, revoked in partner-ca.crl
#   partner-ca.crl             the partner CA's CRL (PEM)
#
# Idempotent: does nothing when DIR/done exists.  No network, a few seconds.
set -e
dir=${1:?usage: make-pki.sh DIR}
[ -f "$dir/done" ] && exit 0
mkdir -p "$dir"
cd "$dir"

ossl() { openssl "$@" >/dev/null 2>&1; }

ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=Sluice Test/CN=Sluice Test CA" \
	-keyout ca.key -out ca.pem
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj "/O=Partner Test/CN=Partner Test CA" -keyout partner-ca.key -out partner-ca.pem
cat ca.pem partner-ca.pem >trusted.pem

# issue NAME CA SUBJECT SAN [KEYTYPE] [DAYS]
issue() {
	name=$1 ca=$2 subj=$3 san=$4 kt=${5:-rsa} days=${6:-825}
	if [ "$kt" = ec ]; then
		ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
			-keyout "$name.key" -out "$name.csr"
	else
		ossl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$name.key" -out "$name.csr"
	fi
	if [ -n "$san" ]; then
		printf "subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" "$san" >"$name.ext"
	else
		printf "extendedKeyUsage=serverAuth,clientAuth\n" >"$name.ext"
	fi
	ossl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
		-days "$days" -extfile "$name.ext" -out "$name.pem"
	rm -f "$name.csr" "$name.ext"
}

issue server ca "/CN=mx.sluice.test" "DNS:mx.sluice.test,DNS:localhost,IP:127.0.0.1"
issue wild ca "/CN=wildcard" "DNS:*.sluice.test"
issue ecdsa ca "/CN=ecdsa.sluice.test" "DNS:ecdsa.sluice.test" ec
issue partner partner-ca "/CN=mx.partner.test" "DNS:partner.test,DNS:mx.partner.test" ec
issue partner-wrong partner-ca "/CN=mx.other.test" "DNS:other.test" ec
issue partner-cn partner-ca "/CN=partner.test" "" ec

# An expired certificate needs a start date in the past: openssl ca.
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
default_crl_days = 30
unique_subject = no
policy = any
copy_extensions = copy
[any]
commonName = supplied
CNF
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mx.partner.test" \
	-addext "subjectAltName=DNS:partner.test" -keyout partner-expired.key -out partner-expired.csr
ossl ca -batch -config ca-db/ca.cnf -cert partner-ca.pem -keyfile partner-ca.key \
	-startdate 20200101000000Z -enddate 20210101000000Z \
	-in partner-expired.csr -out partner-expired.pem
rm -f partner-expired.csr

ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mx.partner.test" \
	-addext "subjectAltName=DNS:partner.test" -keyout partner-revoked.key -out partner-revoked.csr
ossl ca -batch -config ca-db/ca.cnf -cert partner-ca.pem -keyfile partner-ca.key \
	-days 825 -in partner-revoked.csr -out partner-revoked.pem
rm -f partner-revoked.csr
ossl ca -config ca-db/ca.cnf -cert partner-ca.pem -keyfile partner-ca.key \
	-revoke partner-revoked.pem
ossl ca -gencrl -config ca-db/ca.cnf -cert partner-ca.pem -keyfile partner-ca.key \
	-crldays 30 -out partner-ca.crl

ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
	-subj "/CN=partner.test" -addext "subjectAltName=DNS:partner.test" \
	-keyout partner-self.key -out partner-self.pem
for f in server wild ecdsa partner partner-wrong partner-expired partner-self partner-cn partner-revoked; do
	[ -s "$f.pem" ] && [ -s "$f.key" ] || { echo "make-pki: $f failed" >&2; exit 1; }
done
[ -s partner-ca.crl ] || { echo "make-pki: CRL failed" >&2; exit 1; }
touch done
