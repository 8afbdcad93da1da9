"""Where a process's spans go and which are kept, from the standard OTEL_* environment variables.

Honoured: OTEL_TRACES_EXPORTER (otlp, console, none; comma-separated), OTEL_EXPORTER_OTLP_ENDPOINT /
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
(grpc or http/protobuf), OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. The OTLP exporters read
their own OTEL_EXPORTER_OTLP_* variables too (headers, timeout, compression, certificates), and the
batch processor its OTEL_BSP_* ones. Unlike the specification's default, nothing is exported unless
an endpoint or an exporter is named: a service started without a collector sends nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.util.types import Attributes

EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("grpc", "http/protobuf")
# the probes' paths (tollgate.common.http.create_app): never a trace of their own
PROBE_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class TracingConfigError(ValueError):
    """An OTEL_* variable holds a value this service cannot use; the message names it."""


def exporter_names(environ: Mapping[str, str], *, console: bool = False) -> list[str]:
    """The exporters to install: OTEL_TRACES_EXPORTER when set, else otlp when an OTLP endpoint is
    set, plus console when the service's own console switch is on."""
    raw = (environ.get("OTEL_TRACES_EXPORTER") or "").strip()
    if not raw:
        names = ["otlp"] if _endpoint(environ) else []
        return [*names, "console"] if console else names
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in EXPORTERS:
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; use one of {', '.join(EXPORTERS)}"
            )
    if "none" in names:
        if len(names) > 1:
            raise TracingConfigError("OTEL_TRACES_EXPORTER: 'none' cannot be combined with other exporters")
        return []
    return list(dict.fromkeys(names))


def otlp_protocol(environ: Mapping[str, str]) -> str:
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = (environ.get(var) or "").strip().lower()
        if value:
            if value not in PROTOCOLS:
                raise TracingConfigError(
                    f"{var}: unsupported protocol {value!r}; use {' or '.join(PROTOCOLS)}"
                )
            return value
    return "http/protobuf"  # the specification's default


def span_exporters(names: Sequence[str], environ: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif otlp_protocol(environ) == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            exporters.append(GrpcExporter())
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            exporters.append(HttpExporter())
    return exporters


def make_sampler(environ: Mapping[str, str], *, sample_ratio: float, exporting: bool) -> Sampler:
    """OTEL_TRACES_SAMPLER (with OTEL_TRACES_SAMPLER_ARG) when set, else parent-based with the
    service's own ratio (OTEL_TRACES_SAMPLER_ARG, when set, wins over it).

    Without an exporter no new trace is recorded (a recorded span costs about twice an unrecorded
    one and would be thrown away); trace ids still exist and travel, for the logs and the callees.
    A database or Redis call outside any traced operation (a poller, a sweeper) starts no trace of
    its own (a root CLIENT span is dropped, or every poll would be a one-span trace), nor does a
    liveness or readiness probe."""
    name = (environ.get("OTEL_TRACES_SAMPLER") or "").strip().lower()
    ratio = _ratio(environ, sample_ratio)
    if not exporting:
        return ParentBased(ALWAYS_OFF)
    if not name:
        return ParentBased(_RootRules(TraceIdRatioBased(ratio)))
    if name not in SAMPLERS:
        raise TracingConfigError(
            f"OTEL_TRACES_SAMPLER: unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}"
        )
    base = name.removeprefix("parentbased_")
    root: Sampler = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}.get(base) or TraceIdRatioBased(ratio)
    if name.startswith("parentbased_"):
        return ParentBased(_RootRules(root))
    return _RootRules(root)


class _RootRules(Sampler):
    """Drops a root CLIENT span and a root probe request (Kubernetes asks every few seconds: a
    trace each time would bury the requests); asks `inner` about everything else."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: object = None,
    ) -> SamplingResult:
        target = (attributes or {}).get("http.target")
        unwanted = kind is SpanKind.CLIENT or (isinstance(target, str) and target in PROBE_PATHS)
        if unwanted and not get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return f"RootRules{{{self._inner.get_description()}}}"


def _endpoint(environ: Mapping[str, str]) -> str:
    return (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
    ).strip()


def _ratio(environ: Mapping[str, str], default: float) -> float:
    raw = (environ.get("OTEL_TRACES_SAMPLER_ARG") or "").strip()
    if not raw:
        return default
    try:
        ratio = float(raw)
    except ValueError:
        raise TracingConfigError(
            f"OTEL_TRACES_SAMPLER_ARG: {raw!r} is not a number between 0 and 1"
        ) from None
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG: {raw!r} is not a number between 0 and 1")
    return ratio
