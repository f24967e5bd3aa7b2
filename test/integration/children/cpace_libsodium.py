#!/usr/bin/python3
"""A second CPace (CPACE-RISTR255-SHA512, initiator-responder) for the tests: the group is libsodium's
ristretto255 (crypto_core_ristretto255_from_hash is RFC 9496's element derivation), the strings follow
the CFRG draft's reference code. Run, it reads one JSON object per line on stdin (hex fields prs, ci, sid,
ya, yb, ada, adb) and prints one JSON object per line: g, Ya, Yb, K (from both sides) and ISK. Imported
(join-libsodium.py), it lends its functions."""
import ctypes
import hashlib
import json
import sys

sodium = ctypes.CDLL("libsodium.so.23")
if sodium.sodium_init() < 0:
    sys.exit("libsodium did not initialise")

DSI = b"CPaceRistretto255"


def prepend_len(data):
    length = len(data)
    out = b""
    while True:
        out += bytes([length if length < 128 else (length & 0x7F) | 0x80])
        length >>= 7
        if length == 0:
            return out + data


def lv_cat(*parts):
    return b"".join(prepend_len(p) for p in parts)


def generator(prs, ci, sid):
    zpad = max(0, 128 - 1 - len(prepend_len(prs)) - len(prepend_len(DSI)))
    digest = hashlib.sha512(lv_cat(DSI, prs, bytes(zpad), ci, sid)).digest()
    point = ctypes.create_string_buffer(32)
    sodium.crypto_core_ristretto255_from_hash(point, digest)
    return point.raw


def scalar_mult(scalar, point):
    """None when the point does not decode or the product is the identity (the draft's aborts)."""
    out = ctypes.create_string_buffer(32)
    if sodium.crypto_scalarmult_ristretto255(out, scalar, point) != 0:
        return None
    return out.raw


def isk(sid, K, Ya, ada, Yb, adb):
    return hashlib.sha512(lv_cat(DSI + b"_ISK", sid, K) + lv_cat(Ya, ada) + lv_cat(Yb, adb)).digest()


def main():
    for line in sys.stdin:
        v = {k: bytes.fromhex(x) for k, x in json.loads(line).items()}
        g = generator(v["prs"], v["ci"], v["sid"])
        Ya = scalar_mult(v["ya"], g)
        Yb = scalar_mult(v["yb"], g)
        Ka = scalar_mult(v["ya"], Yb)
        Kb = scalar_mult(v["yb"], Ya)
        key = isk(v["sid"], Ka, Ya, v["ada"], Yb, v["adb"])
        print(json.dumps({"g": g.hex(), "Ya": Ya.hex(), "Yb": Yb.hex(), "Ka": Ka.hex(), "Kb": Kb.hex(), "ISK": key.hex()}), flush=True)


if __name__ == "__main__":
    main()
