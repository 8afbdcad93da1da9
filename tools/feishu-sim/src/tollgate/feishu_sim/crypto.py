"""How the Feishu open platform encrypts and signs what it pushes to an app's request URL.

- Encrypted body: `{"encrypt": base64(iv + AES-256-CBC(PKCS#7(json)))}`, the key being
  sha256(Encrypt Key) and the IV 16 random bytes.
- Signature: `X-Lark-Signature` = hex(sha256(timestamp + nonce + Encrypt Key + raw body)), with the
  timestamp and nonce sent as `X-Lark-Request-Timestamp` and `X-Lark-Request-Nonce`.

Written apart from the gateway's decoder on purpose: the bot tests cross-check the two.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def encrypt(plaintext: str, encrypt_key: str) -> str:
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()
