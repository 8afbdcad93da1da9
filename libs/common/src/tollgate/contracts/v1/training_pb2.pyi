from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingStarted(_message.Message):
    __slots__ = ("event_id", "job_id", "org_id", "base_model", "attempt", "resumed_from_step", "total_steps", "started_at_unix_ms")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    job_id: str
    org_id: str
    base_model: str
    attempt: int
    resumed_from_step: int
    total_steps: int
    started_at_unix_ms: int
    def __init__(self, event_id: _Optional[str] = ..., job_id: _Optional[str] = ..., org_id: _Optional[str] = ..., base_model: _Optional[str] = ..., attempt: _Optional[int] = ..., resumed_from_step: _Optional[int] = ..., total_steps: _Optional[int] = ..., started_at_unix_ms: _Optional[int] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("event_id", "job_id", "org_id", "step", "total_steps", "epoch", "loss", "learning_rate", "tokens_per_second", "trained_tokens", "at_unix_ms")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TRAINED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    job_id: str
    org_id: str
    step: int
    total_steps: int
    epoch: int
    loss: float
    learning_rate: float
    tokens_per_second: float
    trained_tokens: int
    at_unix_ms: int
    def __init__(self, event_id: _Optional[str] = ..., job_id: _Optional[str] = ..., org_id: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., epoch: _Optional[int] = ..., loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., trained_tokens: _Optional[int] = ..., at_unix_ms: _Optional[int] = ...) -> None: ...

class TrainingCompleted(_message.Message):
    __slots__ = ("event_id", "job_id", "org_id", "status", "trained_tokens", "cost_micros", "fine_tuned_model", "error_code", "error_message", "finished_at_unix_ms")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRAINED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    FINE_TUNED_MODEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    job_id: str
    org_id: str
    status: str
    trained_tokens: int
    cost_micros: int
    fine_tuned_model: str
    error_code: str
    error_message: str
    finished_at_unix_ms: int
    def __init__(self, event_id: _Optional[str] = ..., job_id: _Optional[str] = ..., org_id: _Optional[str] = ..., status: _Optional[str] = ..., trained_tokens: _Optional[int] = ..., cost_micros: _Optional[int] = ..., fine_tuned_model: _Optional[str] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., finished_at_unix_ms: _Optional[int] = ...) -> None: ...

class ModelDeployed(_message.Message):
    __slots__ = ("event_id", "model_id", "name", "org_id", "base_model", "upstream_model", "job_id", "deployed_at_unix_ms")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    model_id: str
    name: str
    org_id: str
    base_model: str
    upstream_model: str
    job_id: str
    deployed_at_unix_ms: int
    def __init__(self, event_id: _Optional[str] = ..., model_id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., base_model: _Optional[str] = ..., upstream_model: _Optional[str] = ..., job_id: _Optional[str] = ..., deployed_at_unix_ms: _Optional[int] = ...) -> None: ...

class ModelDeleted(_message.Message):
    __slots__ = ("event_id", "model_id", "name", "org_id", "deleted_at_unix_ms")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    model_id: str
    name: str
    org_id: str
    deleted_at_unix_ms: int
    def __init__(self, event_id: _Optional[str] = ..., model_id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., deleted_at_unix_ms: _Optional[int] = ...) -> None: ...
