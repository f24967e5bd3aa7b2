#!/usr/bin/python3
"""A second implementation of site tunnel frames (PROTOCOL.md section 20) for the tests: HKDF-SHA256 from
hashlib/hmac, ChaCha20-Poly1305 (IETF) and Ed25519 from libsodium, CBOR from cbor2. Reads the vector (JSON) on
stdin; seals the vector's message with its salt, opens the vector's frame and reads the routed DATA inside (its
origin's key and peer id; the signature itself is section 2.1's, with its own vectors), and prints what it
computed, as JSON."""
import hashlib
import json
import os
import sys

import cbor2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sodium_aead import ed25519_keypair, hkdf, open_, seal  # noqa: E402

v = json.load(sys.stdin)
h = bytes.fromhex
mesh_key = h(v["mesh_key"])
ad = v["destination_id"].encode()
salt = h(v["salt"])
frame = salt + seal(hkdf(mesh_key, salt, b"nearmesh/2 tunnel"), h(v["message"]), ad)

theirs = h(v["frame"])
opened = open_(hkdf(mesh_key, theirs[:16], b"nearmesh/2 tunnel"), theirs[16:], ad)
# The routed DATA (section 2): [hdr, flags, id, payload, ttl, src, dst, auth]; auth is the signature form,
# the origin's public key then its signature.
message = cbor2.loads(opened)
auth = message[7]
origin_public, _ = ed25519_keypair(h(v["origin_seed"]))
assert auth[:32] == origin_public, "the origin's key"
assert hashlib.sha256(origin_public).digest()[:8] == message[5], "src is the origin's peer id"
print(json.dumps({
    "frame": frame.hex(), "opened": opened.hex(), "src": message[5].hex(), "dst": message[6].hex(),
    "id": message[2], "payload": message[3].hex(),
}))
