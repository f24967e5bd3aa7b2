#!/usr/bin/python3
"""A second implementation of the join exchange's cryptography (PROTOCOL.md section 18) for the tests:
CPace on libsodium's ristretto255, HKDF-SHA256 from hmac, ChaCha20-Poly1305 (IETF) from libsodium, CBOR
from cbor2. Reads the vector (JSON) on stdin; prints what it computes itself, as JSON."""
import json
import os
import sys

import cbor2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpace_libsodium import generator, isk, scalar_mult  # noqa: E402
from sodium_aead import hkdf, open_, seal  # noqa: E402

CONTEXT = b"nearmesh/2 join"


def mult(scalar, point):
    product = scalar_mult(scalar, point)
    if product is None:
        sys.exit("identity or invalid point")
    return product


v = json.load(sys.stdin)
h = bytes.fromhex
hello = cbor2.loads(h(v["hello"]))
assert hello[0] == CONTEXT.decode() and hello[1] == v["discriminator"], hello
sid, Ya = hello[2], hello[3]
reply = cbor2.loads(h(v["reply"]))
assert reply[0] == 1, reply
Yb = reply[1]
g = generator(v["code"].encode(), CONTEXT, sid)
assert mult(h(v["ya"]), g) == Ya and mult(h(v["yb"]), g) == Yb, "shares"
K = mult(h(v["ya"]), Yb)
assert K == mult(h(v["yb"]), Ya), "K"
key = isk(sid, K, Ya, b"joiner", Yb, b"inviter")
k_joiner = hkdf(key, sid, CONTEXT + b" joiner")
k_inviter = hkdf(key, sid, CONTEXT + b" inviter")
card = cbor2.dumps([h(v["joiner_public_key"]), v["joiner_name"]])
proof = cbor2.dumps([2, seal(k_joiner, card)])
grant_reply = cbor2.loads(h(v["grant"]))
assert grant_reply[0] == 3, grant_reply
grant = cbor2.loads(open_(k_inviter, grant_reply[1]))
print(json.dumps({
    "ISK": key.hex(), "k_joiner": k_joiner.hex(), "k_inviter": k_inviter.hex(), "card": card.hex(),
    "proof": proof.hex(), "grant": {
        "mesh_name": grant[0], "epoch": grant[1], "key": grant[2].hex(), "rotation": grant[3],
        "admins": [a.hex() for a in grant[4]], "inviter_key": grant[5].hex(), "inviter_name": grant[6]},
}))
