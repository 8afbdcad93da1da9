import math
from typing import Any

import pytest
from pydantic import ValidationError

from tollgate.auth.keys.schemas import ApplyKeyRequest, DeleteKeyRequest, ListKeysQuery, UpdateKeyRequest


def test_bedrock_gateway_apply_bodies_are_accepted() -> None:
    jack = ApplyKeyRequest.model_validate_json(
        '{"name": "jack", "group_id": 1, "role": "user", "email": "", "month_quota": 1.00}'
    )
    assert (jack.name, jack.group_id, jack.role, jack.email, jack.month_quota) == ("jack", 1, "user", "", 1.0)
    rob = ApplyKeyRequest.model_validate_json('{"name": "rob", "group_id": 1, "role": "admin", "email": ""}')
    assert rob.role == "admin" and rob.month_quota is None


def test_apply_defaults() -> None:
    req = ApplyKeyRequest.model_validate_json('{"name": "  ann  "}')
    assert (req.name, req.role, req.group_id, req.email, req.month_quota) == ("ann", "user", None, None, None)
    assert ApplyKeyRequest.model_validate_json('{"name": "x", "month_quota": 3}').month_quota == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 123},
        {"name": None},
        {"name": "a", "role": "root"},
        {"name": "a", "group_id": "1"},
        {"name": "a", "group_id": 0},
        {"name": "a", "group_id": True},
        {"name": "a", "month_quota": -0.01},
        {"name": "a", "month_quota": "1.0"},
        {"name": "a", "month_quota": True},
        {"name": "a", "month_quota": math.inf},
        {"name": "a", "month_quota": math.nan},
        {"name": "a", "month_quota": 1e13},
        {"name": "a", "email": 5},
        {"name": "a", "unexpected": 1},
    ],
)
def test_apply_rejects_malformed_bodies(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ApplyKeyRequest.model_validate(body)


def test_name_of_exactly_100_characters_is_allowed() -> None:
    assert len(ApplyKeyRequest.model_validate({"name": "x" * 100}).name) == 100


def test_update_tells_an_explicit_null_group_from_an_absent_one() -> None:
    cleared = UpdateKeyRequest.model_validate({"id": 2, "group_id": None})
    untouched = UpdateKeyRequest.model_validate({"id": 2, "name": "jack", "month_quota": 10.0})
    assert "group_id" in cleared.model_fields_set
    assert "group_id" not in untouched.model_fields_set
    assert untouched.month_quota == 10.0


@pytest.mark.parametrize("body", [{}, {"id": "2"}, {"id": 0}, {"id": 1.5}, {"id": 2, "name": ""}])
def test_update_rejects_malformed_bodies(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UpdateKeyRequest.model_validate(body)


def test_delete_needs_an_integer_id() -> None:
    assert DeleteKeyRequest.model_validate({"id": 1}).id == 1
    with pytest.raises(ValidationError):
        DeleteKeyRequest.model_validate({"id": "1"})


def test_list_query_treats_blank_filters_as_absent() -> None:
    # exactly what the Bedrock-style gateway sends
    q = ListKeysQuery.model_validate(
        {"q": "", "name": "", "group_id": "", "role": "", "limit": "10", "offset": ""}
    )
    assert (q.q, q.name, q.group_id, q.role, q.limit, q.offset) == (None, None, None, None, 10, 0)


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"offset": "-1"}, {"group_id": "x"}, {"role": "x"}],
)
def test_list_query_rejects_bad_values(params: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ListKeysQuery.model_validate(params)
