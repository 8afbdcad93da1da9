import pytest

from tollgate.common.money import credits_to_micros, micros_to_credits


@pytest.mark.parametrize(
    ("value", "micros"),
    [(0.23, 230_000), ("0.000001", 1), (1, 1_000_000), (0.1 + 0.2, 300_000), ("12.3456789", 12_345_679)],
)
def test_credits_to_micros_is_exact(value: object, micros: int) -> None:
    assert credits_to_micros(value) == micros  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["abc", "nan", "inf", ""])
def test_credits_to_micros_rejects_non_numbers(bad: str) -> None:
    with pytest.raises(ValueError):
        credits_to_micros(bad)


def test_micros_to_credits() -> None:
    assert micros_to_credits(1_500_000) == 1.5
