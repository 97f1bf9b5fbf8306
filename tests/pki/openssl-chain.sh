#!/usr/bin/env bash
# Makes a certificate chain the way an enterprise PKI does, with the openssl command line
# only: a root CA, an intermediate CA under it, and a leaf issued by the intermediate, all
# Ed25519 (Pactum identities are Ed25519 keys).
#
#   openssl-chain.sh DIR ORGANISATION ROLE NAME [IP]
#
# Writes into DIR: root.pem/root.key (CA, pathlen $ROOT_PATHLEN, default 1), intermediate.pem/intermediate.key
# (CA, pathlen 0), leaf.pem/leaf.key (OU=ROLE, CN=NAME, subjectAltName IP, default
# 127.0.0.1), leaf-chain.pem (leaf then intermediate, as TLS presents it) and
# ca-chain.pem (root then intermediate, as a member lists its CAs).
set -euo pipefail
dir="$1" organisation="$2" role="$3" name="$4" ip="${5:-127.0.0.1}"
mkdir -p "$dir"
cd "$dir"
cat > chain.cnf <<CONF
[req]
distinguished_name = dn
[dn]
[v3_root]
basicConstraints = critical, CA:TRUE, pathlen:${ROOT_PATHLEN:-1}
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:${ip}
authorityKeyIdentifier = keyid
CONF
openssl genpkey -algorithm ed25519 -out root.key 2>/dev/null
openssl req -x509 -new -key root.key -subj "/O=${organisation}/CN=${organisation} Root CA" \
  -days 3650 -config chain.cnf -extensions v3_root -out root.pem
openssl genpkey -algorithm ed25519 -out intermediate.key 2>/dev/null
openssl req -new -key intermediate.key -subj "/O=${organisation}/CN=${organisation} Issuing CA" \
  -config chain.cnf -out intermediate.csr
openssl x509 -req -in intermediate.csr -CA root.pem -CAkey root.key -CAcreateserial \
  -days 1825 -extfile chain.cnf -extensions v3_intermediate -out intermediate.pem 2>/dev/null
openssl genpkey -algorithm ed25519 -out leaf.key 2>/dev/null
openssl req -new -key leaf.key -subj "/O=${organisation}/OU=${role}/CN=${name}" \
  -config chain.cnf -out leaf.csr
openssl x509 -req -in leaf.csr -CA intermediate.pem -CAkey intermediate.key -CAcreateserial \
  -days 365 -extfile chain.cnf -extensions v3_leaf -out leaf.pem 2>/dev/null
cat leaf.pem intermediate.pem > leaf-chain.pem
cat root.pem intermediate.pem > ca-chain.pem
