from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthenticateRequest(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    def __init__(self, api_key: _Optional[str] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("key_id", "org_id", "user_id", "role", "group_id", "permissions", "key_prefix", "expires_at_unix", "month_quota_micros", "models_restricted", "granted_models", "org_role", "key_limits", "org_limits", "chat_recording", "chat_retention_days")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    MONTH_QUOTA_MICROS_FIELD_NUMBER: _ClassVar[int]
    MODELS_RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    GRANTED_MODELS_FIELD_NUMBER: _ClassVar[int]
    ORG_ROLE_FIELD_NUMBER: _ClassVar[int]
    KEY_LIMITS_FIELD_NUMBER: _ClassVar[int]
    ORG_LIMITS_FIELD_NUMBER: _ClassVar[int]
    CHAT_RECORDING_FIELD_NUMBER: _ClassVar[int]
    CHAT_RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    key_id: int
    org_id: str
    user_id: str
    role: str
    group_id: int
    permissions: _containers.RepeatedScalarFieldContainer[str]
    key_prefix: str
    expires_at_unix: int
    month_quota_micros: int
    models_restricted: bool
    granted_models: _containers.RepeatedScalarFieldContainer[str]
    org_role: str
    key_limits: RateLimits
    org_limits: RateLimits
    chat_recording: str
    chat_retention_days: int
    def __init__(self, key_id: _Optional[int] = ..., org_id: _Optional[str] = ..., user_id: _Optional[str] = ..., role: _Optional[str] = ..., group_id: _Optional[int] = ..., permissions: _Optional[_Iterable[str]] = ..., key_prefix: _Optional[str] = ..., expires_at_unix: _Optional[int] = ..., month_quota_micros: _Optional[int] = ..., models_restricted: _Optional[bool] = ..., granted_models: _Optional[_Iterable[str]] = ..., org_role: _Optional[str] = ..., key_limits: _Optional[_Union[RateLimits, _Mapping]] = ..., org_limits: _Optional[_Union[RateLimits, _Mapping]] = ..., chat_recording: _Optional[str] = ..., chat_retention_days: _Optional[int] = ...) -> None: ...

class RateLimits(_message.Message):
    __slots__ = ("tier", "rpm", "tpm", "tpd")
    TIER_FIELD_NUMBER: _ClassVar[int]
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    TPD_FIELD_NUMBER: _ClassVar[int]
    tier: str
    rpm: int
    tpm: int
    tpd: int
    def __init__(self, tier: _Optional[str] = ..., rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., tpd: _Optional[int] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("ok", "reason", "principal")
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reason: str
    principal: Principal
    def __init__(self, ok: _Optional[bool] = ..., reason: _Optional[str] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...
