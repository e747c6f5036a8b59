"""The head of laboratory's electronic signature: an Ed25519 key that only the passphrase unlocks.

The private key is stored encrypted (PKCS#8, best available encryption) with the passphrase,
which itself is never stored: a wrong passphrase fails to decrypt, so there is nothing to
compare against and nothing to leak. Anyone can check a signature with the public key.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from daq.errors import ConfigError
from results.records.errors import Refused


def new_signing_key(passphrase: str) -> tuple[str, str]:
    """(encrypted private key PEM, public key hex)."""
    if len(passphrase) < 8:
        raise ConfigError("signing key", "passphrase", "shorter than 8 characters", "choose a longer passphrase")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(passphrase.encode()))
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem.decode(), public.hex()


def unlock(encrypted_pem: str, passphrase: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(encrypted_pem.encode(), password=passphrase.encode())
    except (ValueError, TypeError):
        raise Refused("R-PASSPHRASE", "the signing passphrase is wrong", "type the signing passphrase again") from None
    assert isinstance(key, Ed25519PrivateKey)
    return key


def sign(encrypted_pem: str, passphrase: str, message: bytes) -> str:
    return unlock(encrypted_pem, passphrase).sign(message).hex()


def signature_valid(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
