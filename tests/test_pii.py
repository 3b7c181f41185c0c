from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.services.pii import Keyring, PersonalDataKeyError, mask_id_number, mask_name

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
HMAC_KEY = "h" * 32


def test_encrypted_values_round_trip_and_hide_the_plaintext() -> None:
    ring = Keyring.from_settings(OLD, HMAC_KEY, "secret")
    token = ring.encrypt("210101200101010011")
    assert "210101200101010011" not in token
    assert ring.decrypt(token) == "210101200101010011"
    assert ring.encrypt("x") != ring.encrypt("x")  # fresh IV each time


def test_keys_rotate_new_first_old_still_reads() -> None:
    old_ring = Keyring.from_settings(OLD, HMAC_KEY, "secret")
    token = old_ring.encrypt("张三")
    both = Keyring.from_settings(f"{NEW},{OLD}", HMAC_KEY, "secret")
    assert both.decrypt(token) == "张三"
    rotated = both.rotate(token)
    new_only = Keyring.from_settings(NEW, HMAC_KEY, "secret")
    assert new_only.decrypt(rotated) == "张三"
    with pytest.raises(PersonalDataKeyError):
        new_only.decrypt(token)


def test_lookup_hash_is_stable_and_keyed() -> None:
    a = Keyring.from_settings(OLD, HMAC_KEY, "secret")
    b = Keyring.from_settings(NEW, HMAC_KEY, "other-secret")
    c = Keyring.from_settings(OLD, "k" * 32, "secret")
    number = "210101200101010011"
    assert a.lookup_hash(number) == b.lookup_hash(number)  # independent of the encryption key
    assert a.lookup_hash(number) != c.lookup_hash(number)
    assert number not in a.lookup_hash(number)


def test_development_keys_derive_from_the_secret_key() -> None:
    a = Keyring.from_settings("", "", "dev-secret")
    assert Keyring.from_settings("", "", "dev-secret").decrypt(a.encrypt("x")) == "x"
    with pytest.raises(PersonalDataKeyError):
        Keyring.from_settings("", "", "other").decrypt(a.encrypt("x"))


def test_masks() -> None:
    assert mask_id_number("210101200101010011") == "2101**********0011"
    assert mask_id_number("H12345678") == "H1*****78"
    assert mask_id_number("EA1234567") == "EA*****67"
    assert mask_id_number("12345678") == "1******8"
    assert mask_id_number("E1234") == "E***4"
    assert mask_id_number("AB") == "**"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧**明"
    assert mask_name("阿依古丽·买买提") == "阿******提"
    assert mask_name("") == "*"
