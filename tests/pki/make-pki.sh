#!/bin/sh
# make-pki.sh DIR - a throw-away PKI for the TLS tests, made at test time
# with the openssl command, no network, in a few seconds.  README.md in
# this directory describes every file and what each is for.
#
# Idempotent: DIR/done holds the layout version; when it matches nothing
# is done, otherwise DIR is filled again from scratch.  Bump PKI_VERSION
# whenever a file is added or changed, so stale directories are remade.
set -e
PKI_VERSION=4
dir=${1:?usage: make-pki.sh DIR}
[ "$(cat "$dir/done" 2>/dev/null)" = "$PKI_VERSION" ] && exit 0
mkdir -p "$dir"
cd "$dir"
rm -rf ca-db done


# Run openssl quietly; on failure show what it said and stop.
ossl() {
	if ! openssl "$@" >ossl.log 2>&1; then
		echo "make-pki: openssl $1 failed:" >&2
		cat ossl.log >&2
		exit 1
	fi
}

# newkey NAME rsa|ec: a private key in NAME.key
newkey() {
	if [ "$2" = ec ]; then
		ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
	else
		ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"
	fi
}

# mkca NAME KEYTYPE SUBJECT [ISSUER]: a CA certificate (self-signed root,
# or an intermediate signed by ISSUER) and its openssl-ca database, so
# that it can issue back-dated certificates, revoke and publish a CRL.
mkca() {
	name=$1 kt=$2 subj=$3 issuer=$4
	newkey "$name" "$kt"
	if [ -z "$issuer" ]; then
		ossl req -x509 -new -key "$name.key" -days 3650 -subj "$subj" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$name.pem"
	else
		ossl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
		printf "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n" \
			>"$name.ext"
		ossl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" \
			-set_serial 0x$(openssl rand -hex 8) -days 3650 -extfile "$name.ext" -out "$name.pem"
		rm -f "$name.csr" "$name.ext"
	fi
	mkdir -p "ca-db/$name"
	: >"ca-db/$name/index.txt"
	echo 1000 >"ca-db/$name/serial"
	echo 1000 >"ca-db/$name/crlnumber"
	cat >"ca-db/$name/ca.cnf" <<CNF
[ca]
default_ca = this
[this]
database = ca-db/$name/index.txt
serial = ca-db/$name/serial
crlnumber = ca-db/$name/crlnumber
new_certs_dir = ca-db/$name
certificate = $name.pem
private_key = $name.key
default_md = sha256
default_days = 825
default_crl_days = 30
unique_subject = no
policy = any
copy_extensions = copy
[any]
commonName = supplied
CNF
}

# issue NAME CA KEYTYPE SUBJECT SAN [openssl-ca date options...]
# SAN "" means no subjectAltName at all (a CN-only certificate).
issue() {
	name=$1 ca=$2 kt=$3 subj=$4 san=$5
	shift 5
	newkey "$name" "$kt"
	if [ -n "$san" ]; then
		ossl req -new -key "$name.key" -subj "$subj" -addext "subjectAltName=$san" \
			-addext "extendedKeyUsage=${EKU:-serverAuth,clientAuth}" -out "$name.csr"
	else
		ossl req -new -key "$name.key" -subj "$subj" \
			-addext "extendedKeyUsage=${EKU:-serverAuth,clientAuth}" -out "$name.csr"
	fi
	ossl ca -batch -notext -config "ca-db/$ca/ca.cnf" "$@" -in "$name.csr" -out "$name.pem"
	rm -f "$name.csr"
}

# selfsigned NAME KEYTYPE SUBJECT SAN
selfsigned() {
	newkey "$1" "$2"
	ossl req -x509 -new -key "$1.key" -days 825 -subj "$3" \
		-addext "subjectAltName=$4" -addext "basicConstraints=critical,CA:FALSE" -out "$1.pem"
}

# The two organisations' CAs and an intermediate of ours.
mkca ca rsa "/O=Sluice Test/CN=Sluice Test CA"
mkca partner-ca ec "/O=Partner Test/CN=Partner Test CA"
mkca inter-ca ec "/O=Sluice Test/CN=Sluice Test Intermediate CA" ca
cat ca.pem partner-ca.pem >trusted.pem

# Our server certificates.
issue server ca rsa "/CN=mx.sluice.test" "DNS:mx.sluice.test,DNS:localhost,IP:127.0.0.1,IP:::1"
issue wild ca rsa "/CN=wildcard" "DNS:*.sluice.test"
issue ecdsa ca ec "/CN=ecdsa.sluice.test" "DNS:ecdsa.sluice.test"
issue wrong ca ec "/CN=mx.other.test" "DNS:mx.other.test"
# Our own organisation's certificate for Domain Security: it names the
# domain itself (partners check the recipient or sender domain).
issue org ca ec "/CN=mx.sluice.test" "DNS:sluice.test,DNS:mx.sluice.test"
issue cn-only ca ec "/CN=mx.sluice.test" ""
issue expired ca ec "/CN=mx.sluice.test" "DNS:mx.sluice.test" \
	-startdate 20200101000000Z -enddate 20210101000000Z
issue notyet ca ec "/CN=mx.sluice.test" "DNS:mx.sluice.test" \
	-startdate 20991231000000Z -enddate 21001231000000Z
issue revoked ca ec "/CN=mx.sluice.test" "DNS:mx.sluice.test"
selfsigned self ec "/CN=mx.sluice.test" "DNS:mx.sluice.test"
# A leaf under the intermediate; chain.pem is the file an administrator
# installs: leaf first, then the intermediate.
issue chain-leaf inter-ca ec "/CN=chain.sluice.test" "DNS:chain.sluice.test"
cat chain-leaf.pem inter-ca.pem >chain.pem
mv chain-leaf.key chain.key
rm -f chain-leaf.pem

# The partner organisation's client certificates.
issue partner partner-ca ec "/CN=mx.partner.test" "DNS:partner.test,DNS:mx.partner.test"
issue partner-wrong partner-ca ec "/CN=mx.other.test" "DNS:other.test"
issue partner-cn partner-ca ec "/CN=partner.test" ""
issue partner-expired partner-ca ec "/CN=mx.partner.test" "DNS:partner.test" \
	-startdate 20200101000000Z -enddate 20210101000000Z
issue partner-revoked partner-ca ec "/CN=mx.partner.test" "DNS:partner.test"
selfsigned partner-self ec "/CN=partner.test" "DNS:partner.test"
issue partner-by-ca ca ec "/CN=mx.partner.test" "DNS:partner.test,DNS:mx.partner.test"
# Extended key usage other than both: a server certificate (serverAuth
# only, as public CAs issue from 2026) that Postfix or Exim present as
# their client certificate, and one fit for neither.
EKU=serverAuth issue partner-server partner-ca ec "/CN=mx.partner.test" \
	"DNS:partner.test,DNS:mx.partner.test"
EKU=emailProtection issue partner-email partner-ca ec "/CN=mx.partner.test" \
	"DNS:partner.test,DNS:mx.partner.test"

# Revocations and CRLs: current ones, one file holding both, and a stale
# CRL of our CA (its nextUpdate has passed).
ossl ca -config ca-db/ca/ca.cnf -revoke revoked.pem -crl_reason keyCompromise
ossl ca -config ca-db/partner-ca/ca.cnf -revoke partner-revoked.pem -crl_reason keyCompromise
ossl ca -gencrl -config ca-db/ca/ca.cnf -out ca.crl
ossl ca -gencrl -config ca-db/partner-ca/ca.cnf -out partner-ca.crl
ossl ca -gencrl -config ca-db/ca/ca.cnf -crl_lastupdate 20200101000000Z \
	-crl_nextupdate 20200201000000Z -out ca-stale.crl
cat ca.crl partner-ca.crl >crls.pem

for f in server wild ecdsa wrong cn-only expired notyet revoked self chain \
	partner partner-wrong partner-cn partner-expired partner-revoked partner-self partner-by-ca; do
	[ -s "$f.pem" ] && [ -s "$f.key" ] || {
		echo "make-pki: $f is missing" >&2
		exit 1
	}
done
rm -f ossl.log
chmod 644 ./*.pem ./*.crl
echo "$PKI_VERSION" >done
