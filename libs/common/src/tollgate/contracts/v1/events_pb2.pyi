from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class UsageRecorded(_message.Message):
    __slots__ = ("event_id", "org_id", "key_id", "user_id", "model", "provider", "tokens_in", "tokens_out", "cost_micros", "latency_ms", "status", "hold_id", "started_at_unix_ms", "finished_at_unix_ms", "endpoint", "stream", "tokens_estimated", "operation", "batch", "units", "tokens_cached_in", "tokens_cache_write", "tokens_reasoning", "requested_model", "deployment")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TOKENS_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_CACHED_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_CACHE_WRITE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_REASONING_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    org_id: str
    key_id: int
    user_id: str
    model: str
    provider: str
    tokens_in: int
    tokens_out: int
    cost_micros: int
    latency_ms: int
    status: str
    hold_id: str
    started_at_unix_ms: int
    finished_at_unix_ms: int
    endpoint: str
    stream: bool
    tokens_estimated: bool
    operation: str
    batch: bool
    units: int
    tokens_cached_in: int
    tokens_cache_write: int
    tokens_reasoning: int
    requested_model: str
    deployment: str
    def __init__(self, event_id: _Optional[str] = ..., org_id: _Optional[str] = ..., key_id: _Optional[int] = ..., user_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., tokens_in: _Optional[int] = ..., tokens_out: _Optional[int] = ..., cost_micros: _Optional[int] = ..., latency_ms: _Optional[int] = ..., status: _Optional[str] = ..., hold_id: _Optional[str] = ..., started_at_unix_ms: _Optional[int] = ..., finished_at_unix_ms: _Optional[int] = ..., endpoint: _Optional[str] = ..., stream: _Optional[bool] = ..., tokens_estimated: _Optional[bool] = ..., operation: _Optional[str] = ..., batch: _Optional[bool] = ..., units: _Optional[int] = ..., tokens_cached_in: _Optional[int] = ..., tokens_cache_write: _Optional[int] = ..., tokens_reasoning: _Optional[int] = ..., requested_model: _Optional[str] = ..., deployment: _Optional[str] = ...) -> None: ...

class ApiKeyChanged(_message.Message):
    __slots__ = ("key_id", "key_hash", "change", "changed_at_unix_ms")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    key_id: int
    key_hash: str
    change: str
    changed_at_unix_ms: int
    def __init__(self, key_id: _Optional[int] = ..., key_hash: _Optional[str] = ..., change: _Optional[str] = ..., changed_at_unix_ms: _Optional[int] = ...) -> None: ...

class CostAlert(_message.Message):
    __slots__ = ("alert_id", "org_id", "key_id", "kind", "budget_id", "period", "threshold_pct", "spent_micros", "limit_micros", "balance_micros", "fired_at_unix_ms")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_PCT_FIELD_NUMBER: _ClassVar[int]
    SPENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_MICROS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MICROS_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    org_id: str
    key_id: int
    kind: str
    budget_id: str
    period: str
    threshold_pct: int
    spent_micros: int
    limit_micros: int
    balance_micros: int
    fired_at_unix_ms: int
    def __init__(self, alert_id: _Optional[str] = ..., org_id: _Optional[str] = ..., key_id: _Optional[int] = ..., kind: _Optional[str] = ..., budget_id: _Optional[str] = ..., period: _Optional[str] = ..., threshold_pct: _Optional[int] = ..., spent_micros: _Optional[int] = ..., limit_micros: _Optional[int] = ..., balance_micros: _Optional[int] = ..., fired_at_unix_ms: _Optional[int] = ...) -> None: ...

class ChatRecorded(_message.Message):
    __slots__ = ("event_id", "org_id", "key_id", "user_id", "session_id", "thread_id", "mode", "retention_days", "model", "stream", "status", "tokens_in", "tokens_out", "created_at_unix_ms", "messages_json", "answer", "endpoint")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_JSON_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    org_id: str
    key_id: int
    user_id: str
    session_id: str
    thread_id: str
    mode: str
    retention_days: int
    model: str
    stream: bool
    status: str
    tokens_in: int
    tokens_out: int
    created_at_unix_ms: int
    messages_json: str
    answer: str
    endpoint: str
    def __init__(self, event_id: _Optional[str] = ..., org_id: _Optional[str] = ..., key_id: _Optional[int] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., mode: _Optional[str] = ..., retention_days: _Optional[int] = ..., model: _Optional[str] = ..., stream: _Optional[bool] = ..., status: _Optional[str] = ..., tokens_in: _Optional[int] = ..., tokens_out: _Optional[int] = ..., created_at_unix_ms: _Optional[int] = ..., messages_json: _Optional[str] = ..., answer: _Optional[str] = ..., endpoint: _Optional[str] = ...) -> None: ...
