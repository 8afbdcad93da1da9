"""Training settings, read from TRAINING_* environment variables (API, worker and job processes)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tollgate.common.settings import ServiceSettings

# services/training/alembic.ini: the package is installed editable (uv workspace, also in the image).
_DEFAULT_ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


class TrainingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    service_name: str = "training"
    http_port: int = 8084
    metrics_port: int = 9184
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_training"
    alembic_ini: str = str(_DEFAULT_ALEMBIC_INI)
    auth_timeout_s: float = 2.0
    billing_timeout_s: float = 5.0

    # The volume shared by the API (uploaded files), the worker and job processes (checkpoints,
    # adapters) and the model server (adapters): a PersistentVolumeClaim in deploy/k8s.
    data_dir: Path = Path(".local/training")
    # Dequantized base models, prepared once and read by every job (shared across stacks locally).
    base_cache_dir: Path = Path(".local/models/bases")

    # Files (OpenAI Files API subset)
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_file_lines: int = Field(default=50_000, ge=1)
    # Longest example trained, in tokens; longer ones are truncated (and estimated at this cap).
    max_seq_len: int = Field(default=512, ge=16, le=8192)

    # Jobs
    hold_ttl_seconds: int = Field(default=24 * 3600, ge=60)  # the estimated-cost hold outlives the job
    max_attempts: int = Field(default=3, ge=1)  # leases a job may take (1 + resumes) before it fails
    default_n_epochs: int = Field(default=3, ge=1)
    default_batch_size: int = Field(default=4, ge=1)
    # LoRA on a small base learns with a higher rate than a full fine-tune: the multiplier scales this.
    base_learning_rate: float = Field(default=1e-3, gt=0)
    default_lora_r: int = 16
    default_lora_alpha: int = 32
    default_lora_dropout: float = 0.0
    checkpoints_kept: int = Field(default=3, ge=1)

    # Worker (tollgate-training-worker)
    worker_http_port: int = 8086
    worker_metrics_port: int = 9186
    executor: str = Field(default="local", pattern="^(local|kubernetes)$")
    max_concurrent_jobs: int = Field(default=1, ge=1)
    lease_ttl_s: float = Field(default=30.0, gt=1)
    heartbeat_s: float = Field(default=5.0, gt=0)
    poll_interval_s: float = Field(default=0.5, gt=0)
    # with no job running here: the worker wakes on every job change (NOTIFY training_jobs), so this
    # poll only finds what has no notification (another worker's lease running out)
    idle_poll_interval_s: float = Field(default=2.0, gt=0)
    stop_grace_s: float = Field(default=10.0, gt=0)
    # Keep one job process started ahead, its libraries imported (torch alone takes ~10 s here).
    warm_spare: bool = True
    job_threads: int = Field(default=0, ge=0)  # torch threads in a job process; 0 = its default
    # glibc's malloc in a job process (GLIBC_TUNABLES, unless the environment sets its own; "" = its
    # defaults): keep freed memory instead of unmapping it. Every step allocates and frees ~1 GB
    # blocks (a 262k-token vocabulary's logits and their gradients), which glibc maps fresh and
    # unmaps each time: ~1 million page faults a step, 15-20 % of the CPU in the kernel, more on a
    # machine whose free memory went back to its host. Kept, a job trained 8-12 % faster
    # (docs/benchmarks.md, training run 12); the process gives it all back when the job ends.
    job_malloc_tunables: str = (
        "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.top_pad=268435456"
    )
    # A job's steps are written off its training thread, at most one transaction this often (every
    # step keeps its own event and Kafka record; a CPU step takes longer, so each is written alone)
    progress_interval_s: float = Field(default=1.0, gt=0)

    # Kubernetes executor
    k8s_namespace: str = "tollgate"
    k8s_image: str = "tollgate/training:latest"
    k8s_service_account: str = "training-job"
    k8s_data_claim: str = "training-data"
    k8s_data_mount: str = "/data"
    k8s_config_map: str = "tollgate-config"
    k8s_secret: str = "tollgate-secrets"
    # Set (production overlay): job pods read TRAINING_DATABASE_URL from the ConfigMap and its password
    # from this Secret's `password` key (the role's CloudNativePG secret) instead of k8s_secret's URL.
    k8s_database_password_secret: str = ""
    k8s_gpu_resource: str = "nvidia.com/gpu"
    k8s_gpu_type_label: str = "nvidia.com/gpu.product"

    # Outbox relay (events to Kafka after the transaction that wrote them committed). It wakes on
    # the outbox's NOTIFY; the interval is the fallback for one missed while its LISTEN was down.
    outbox_interval_s: float = Field(default=5.0, gt=0)
    outbox_batch: int = Field(default=200, ge=1)

    # Vector collections: ANN index files on the data volume (rebuildable from PostgreSQL), how often
    # changed indexes are saved, and the search plan's limits (vectors/service.py)
    vector_flush_interval_s: float = Field(default=30.0, gt=0)
    vector_exact_limit: int = Field(default=2048, ge=0)
    vector_max_candidates: int = Field(default=8192, ge=16)
    vector_index_threads: int = Field(default=0, ge=0)
    # Indexes open in the background (at startup, or when a search finds one missing); a search
    # waits this long for its index, then is answered by exact search over PostgreSQL. Compaction:
    # every interval, an index whose tombstones are at least the minimum and more than the ratio of
    # its live vectors is rebuilt beside the serving one and swapped in (vectors/maintenance.py).
    vector_index_wait_s: float = Field(default=2.0, ge=0)
    vector_compact_interval_s: float = Field(default=60.0, gt=0)
    vector_compact_ratio: float = Field(default=0.25, gt=0)
    vector_compact_min_tombstones: int = Field(default=1000, ge=1)

    @property
    def vectors_dir(self) -> Path:
        return self.data_dir / "vectors"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"
