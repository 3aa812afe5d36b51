from __future__ import annotations

import pytest

from hallkiosk.privacy import (
    IdentityHasher,
    PrivacyError,
    gb11643_check_digit,
    mask_id_number,
    mask_name,
    normalise_id_number,
)


def test_check_digit_known_examples() -> None:
    assert gb11643_check_digit("11010519491231002") == "X"  # the GB 11643 worked example
    assert gb11643_check_digit("11010119900307001") == "1"
    with pytest.raises(PrivacyError):
        normalise_id_number("110105194912310021")
    assert normalise_id_number(" 11010519491231002x ") == "11010519491231002X"


def test_masks() -> None:
    assert mask_id_number("330106199001011234") == "3301**********1234"
    assert mask_name("张三") == "张*"
    assert mask_name("张小三") == "张*三"
    assert mask_name("欧阳小明") == "欧**明"


def test_hash_is_keyed_and_normalised() -> None:
    a = IdentityHasher(b"k" * 32)
    b = IdentityHasher(b"j" * 32)
    assert a.hash_id_number("11010519491231002X") == a.hash_id_number("11010519491231002x")
    assert a.hash_id_number("11010519491231002X") != b.hash_id_number("11010519491231002X")
    assert "11010519491231002X" not in a.hash_id_number("11010519491231002X")
