from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReserveRequest(_message.Message):
    __slots__ = ("org_id", "key_id", "request_id", "max_cost_micros", "month_quota_micros", "user_id", "model", "hold_ttl_seconds")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    MONTH_QUOTA_MICROS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HOLD_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    key_id: int
    request_id: str
    max_cost_micros: int
    month_quota_micros: int
    user_id: str
    model: str
    hold_ttl_seconds: int
    def __init__(self, org_id: _Optional[str] = ..., key_id: _Optional[int] = ..., request_id: _Optional[str] = ..., max_cost_micros: _Optional[int] = ..., month_quota_micros: _Optional[int] = ..., user_id: _Optional[str] = ..., model: _Optional[str] = ..., hold_ttl_seconds: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("granted", "hold_id", "available_micros", "reason", "hold_micros", "balance_micros", "stockable")
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MICROS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HOLD_MICROS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MICROS_FIELD_NUMBER: _ClassVar[int]
    STOCKABLE_FIELD_NUMBER: _ClassVar[int]
    granted: bool
    hold_id: str
    available_micros: int
    reason: str
    hold_micros: int
    balance_micros: int
    stockable: bool
    def __init__(self, granted: _Optional[bool] = ..., hold_id: _Optional[str] = ..., available_micros: _Optional[int] = ..., reason: _Optional[str] = ..., hold_micros: _Optional[int] = ..., balance_micros: _Optional[int] = ..., stockable: _Optional[bool] = ...) -> None: ...

class ReserveStockRequest(_message.Message):
    __slots__ = ("org_id", "key_id", "hold_ids", "max_cost_micros", "month_quota_micros", "user_id", "model")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    MONTH_QUOTA_MICROS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    key_id: int
    hold_ids: _containers.RepeatedScalarFieldContainer[str]
    max_cost_micros: int
    month_quota_micros: int
    user_id: str
    model: str
    def __init__(self, org_id: _Optional[str] = ..., key_id: _Optional[int] = ..., hold_ids: _Optional[_Iterable[str]] = ..., max_cost_micros: _Optional[int] = ..., month_quota_micros: _Optional[int] = ..., user_id: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ReserveStockResponse(_message.Message):
    __slots__ = ("hold_ids", "stopped")
    HOLD_IDS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    hold_ids: _containers.RepeatedScalarFieldContainer[str]
    stopped: str
    def __init__(self, hold_ids: _Optional[_Iterable[str]] = ..., stopped: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("org_id", "hold_id")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    hold_id: str
    def __init__(self, org_id: _Optional[str] = ..., hold_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: _Optional[bool] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("org_id",)
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    def __init__(self, org_id: _Optional[str] = ...) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("balance_micros", "held_micros", "available_micros")
    BALANCE_MICROS_FIELD_NUMBER: _ClassVar[int]
    HELD_MICROS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MICROS_FIELD_NUMBER: _ClassVar[int]
    balance_micros: int
    held_micros: int
    available_micros: int
    def __init__(self, balance_micros: _Optional[int] = ..., held_micros: _Optional[int] = ..., available_micros: _Optional[int] = ...) -> None: ...

class KafkaHeader(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class HoldMark(_message.Message):
    __slots__ = ("org_id", "hold_id", "cost_micros", "usage_event", "headers")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    USAGE_EVENT_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    hold_id: str
    cost_micros: int
    usage_event: bytes
    headers: _containers.RepeatedCompositeFieldContainer[KafkaHeader]
    def __init__(self, org_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., cost_micros: _Optional[int] = ..., usage_event: _Optional[bytes] = ..., headers: _Optional[_Iterable[_Union[KafkaHeader, _Mapping]]] = ...) -> None: ...

class HoldMarks(_message.Message):
    __slots__ = ("marks",)
    MARKS_FIELD_NUMBER: _ClassVar[int]
    marks: _containers.RepeatedCompositeFieldContainer[HoldMark]
    def __init__(self, marks: _Optional[_Iterable[_Union[HoldMark, _Mapping]]] = ...) -> None: ...
