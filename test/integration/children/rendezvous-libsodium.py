#!/usr/bin/python3
"""A second implementation of rendezvous records (PROTOCOL.md section 19) for the tests: HKDF-SHA256 and
HMAC-SHA256 from hashlib/hmac, Ed25519 and ChaCha20-Poly1305 (IETF) from libsodium, CBOR from cbor2. Reads
the vector (JSON) on stdin; writes the record from its inputs and opens the vector's payload, and prints
what it computed, as JSON."""
import hashlib
import hmac
import json
import os
import sys

import cbor2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sodium_aead import ed25519_keypair, ed25519_sign, ed25519_verify, hkdf, open_, seal  # noqa: E402

CONTEXT = "nearmesh/2 rendezvous"
v = json.load(sys.stdin)
h = bytes.fromhex
mesh_key = h(v["mesh_key"])
public, secret = ed25519_keypair(h(v["seed"]))
tag = hkdf(mesh_key, b"", b"nearmesh/2 rendezvous tag", 16)
slot_key = hkdf(mesh_key, b"", b"nearmesh/2 rendezvous slot", 32)
slot = hmac.new(slot_key, public, hashlib.sha256).digest()[:16]
ad = (tag.hex() + "/" + slot.hex()).encode()
claims = [public, v["name"], v["endpoints"], v["issued_at_ms"], v["ttl_s"]]
signed = cbor2.dumps([CONTEXT, tag] + claims)
signature = ed25519_sign(secret, signed)
record = cbor2.dumps([CONTEXT] + claims + [signature])
salt = h(v["salt"])
payload = salt + seal(hkdf(mesh_key, salt, b"nearmesh/2 rendezvous record"), record, ad)

# The vector's payload, opened and checked as a receiver would.
theirs = h(v["payload"])
opened = cbor2.loads(open_(hkdf(mesh_key, theirs[:16], b"nearmesh/2 rendezvous record"), theirs[16:], ad))
assert opened[0] == CONTEXT, opened
their_signed = cbor2.dumps([CONTEXT, tag] + opened[1:6])
assert ed25519_verify(opened[1], their_signed, opened[6]), "signature"
assert hmac.new(slot_key, opened[1], hashlib.sha256).digest()[:16] == slot, "slot"
print(json.dumps({
    "public_key": public.hex(), "peer_id": hashlib.sha256(public).digest()[:8].hex(), "tag": tag.hex(),
    "slot": slot.hex(), "signed": signed.hex(), "signature": signature.hex(), "record": record.hex(),
    "payload": payload.hex(), "opened": {
        "public_key": opened[1].hex(), "name": opened[2], "endpoints": opened[3], "issued_at_ms": opened[4],
        "ttl_s": opened[5]},
}))
