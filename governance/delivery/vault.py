"""Encrypting project secrets at rest with Fernet (AES in CBC mode with an HMAC), under the keys
in settings.QUORUM_SECRET_KEYS: the first encrypts, every one decrypts, so keys rotate."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from governance.delivery.errors import SecretUnreadable


def _keys() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.QUORUM_SECRET_KEYS])


def seal(value: str) -> str:
    return _keys().encrypt(value.encode()).decode()


def unseal(token: str) -> str:
    """Raises SecretUnreadable when none of the keys opens it (a key removed too soon)."""
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable from None


def reseal(token: str) -> str:
    """The same value, encrypted with the first key. Raises SecretUnreadable."""
    try:
        return _keys().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable from None
