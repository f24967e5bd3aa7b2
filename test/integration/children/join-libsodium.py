#!/usr/bin/python3
"""A second implementation of the join exchange's cryptography (PROTOCOL.md section 18) for the tests:
CPace on libsodium's ristretto255, HKDF-SHA256 from hmac, ChaCha20-Poly1305 (IETF) from libsodium, CBOR
from cbor2. Reads the vector (JSON) on stdin; prints what it computes itself, as JSON."""
import ctypes
import hashlib
import hmac
import json
import sys

import cbor2

sodium = ctypes.CDLL("libsodium.so.23")
if sodium.sodium_init() < 0:
    sys.exit("libsodium did not initialise")

DSI = b"CPaceRistretto255"
CONTEXT = b"nearmesh/2 join"


def prepend_len(data):
    length, out = len(data), b""
    while True:
        out += bytes([length if length < 128 else (length & 0x7F) | 0x80])
        length >>= 7
        if length == 0:
            return out + data


def lv_cat(*parts):
    return b"".join(prepend_len(p) for p in parts)


def generator(prs, ci, sid):
    zpad = max(0, 128 - 1 - len(prepend_len(prs)) - len(prepend_len(DSI)))
    point = ctypes.create_string_buffer(32)
    sodium.crypto_core_ristretto255_from_hash(point, hashlib.sha512(lv_cat(DSI, prs, bytes(zpad), ci, sid)).digest())
    return point.raw


def mult(scalar, point):
    out = ctypes.create_string_buffer(32)
    if sodium.crypto_scalarmult_ristretto255(out, scalar, point) != 0:
        sys.exit("identity or invalid point")
    return out.raw


def hkdf(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def seal(key, plaintext):
    out = ctypes.create_string_buffer(len(plaintext) + 16)
    out_len = ctypes.c_ulonglong()
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        out, ctypes.byref(out_len), plaintext, ctypes.c_ulonglong(len(plaintext)), None, ctypes.c_ulonglong(0),
        None, bytes(12), key)
    return out.raw[: out_len.value]


def open_(key, sealed):
    out = ctypes.create_string_buffer(len(sealed))
    out_len = ctypes.c_ulonglong()
    if sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
            out, ctypes.byref(out_len), None, sealed, ctypes.c_ulonglong(len(sealed)), None, ctypes.c_ulonglong(0),
            bytes(12), key) != 0:
        sys.exit("does not open")
    return out.raw[: out_len.value]


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
isk = hashlib.sha512(lv_cat(DSI + b"_ISK", sid, K) + lv_cat(Ya, b"joiner") + lv_cat(Yb, b"inviter")).digest()
k_joiner = hkdf(isk, sid, CONTEXT + b" joiner")
k_inviter = hkdf(isk, sid, CONTEXT + b" inviter")
card = cbor2.dumps([h(v["joiner_public_key"]), v["joiner_name"]])
proof = cbor2.dumps([2, seal(k_joiner, card)])
grant_reply = cbor2.loads(h(v["grant"]))
assert grant_reply[0] == 3, grant_reply
grant = cbor2.loads(open_(k_inviter, grant_reply[1]))
print(json.dumps({
    "ISK": isk.hex(), "k_joiner": k_joiner.hex(), "k_inviter": k_inviter.hex(), "card": card.hex(),
    "proof": proof.hex(), "grant": {
        "mesh_name": grant[0], "epoch": grant[1], "key": grant[2].hex(), "rotation": grant[3],
        "admins": [a.hex() for a in grant[4]], "inviter_key": grant[5].hex(), "inviter_name": grant[6]},
}))
