"""HKDF-SHA256 (from hmac), ChaCha20-Poly1305 IETF with a zero nonce and Ed25519 (from libsodium): the
primitives the second implementations of the join exchange and of rendezvous records share."""
import ctypes
import hashlib
import hmac
import sys

from cpace_libsodium import sodium


def hkdf(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def seal(key, plaintext, ad=b""):
    out = ctypes.create_string_buffer(len(plaintext) + 16)
    out_len = ctypes.c_ulonglong()
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        out, ctypes.byref(out_len), plaintext, ctypes.c_ulonglong(len(plaintext)), ad or None,
        ctypes.c_ulonglong(len(ad)), None, bytes(12), key)
    return out.raw[: out_len.value]


def open_(key, sealed, ad=b""):
    out = ctypes.create_string_buffer(len(sealed))
    out_len = ctypes.c_ulonglong()
    if sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
            out, ctypes.byref(out_len), None, sealed, ctypes.c_ulonglong(len(sealed)), ad or None,
            ctypes.c_ulonglong(len(ad)), bytes(12), key) != 0:
        sys.exit("does not open")
    return out.raw[: out_len.value]


def ed25519_keypair(seed):
    public, secret = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    sodium.crypto_sign_seed_keypair(public, secret, seed)
    return public.raw, secret.raw


def ed25519_sign(secret, message):
    signature = ctypes.create_string_buffer(64)
    sodium.crypto_sign_detached(signature, None, message, ctypes.c_ulonglong(len(message)), secret)
    return signature.raw


def ed25519_verify(public, message, signature):
    return sodium.crypto_sign_verify_detached(signature, message, ctypes.c_ulonglong(len(message)), public) == 0
