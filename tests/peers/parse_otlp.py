"""Parses an OTLP/HTTP JSON trace export with the official OpenTelemetry
protobuf definitions (a third-party check that the gateway's hand-written
exporter sends what a collector accepts) and prints its spans as one JSON
list: [{"traceId", "spanId", "parentSpanId", "name", "kind", "attributes",
"status", "service"}]. Reads the request body on stdin; exits non-zero on
anything a collector would refuse."""
import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ID_LENGTHS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def hex_ids_to_base64(document):
    """OTLP/JSON writes ids as hex where protobuf's JSON mapping expects
    base64: convert, checking each is lowercase hex of the right length."""
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key, length in ID_LENGTHS.items():
                    if key not in span:
                        continue
                    text = span[key]
                    raw = bytes.fromhex(text)
                    if len(raw) != length or text != text.lower():
                        raise ValueError(f"{key} {text!r} is not {length} bytes of lowercase hex")
                    span[key] = base64.b64encode(raw).decode()


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


document = json.loads(sys.stdin.read())
hex_ids_to_base64(document)
request = ExportTraceServiceRequest()
json_format.Parse(json.dumps(document), request, ignore_unknown_fields=False)

spans = []
for resource_spans in request.resource_spans:
    resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
    for scope_spans in resource_spans.scope_spans:
        for span in scope_spans.spans:
            if span.end_time_unix_nano < span.start_time_unix_nano or span.start_time_unix_nano == 0:
                raise ValueError(f"span {span.name!r} has bad times")
            spans.append({
                "traceId": span.trace_id.hex(),
                "spanId": span.span_id.hex(),
                "parentSpanId": span.parent_span_id.hex(),
                "name": span.name,
                "kind": Span.SpanKind.Name(span.kind),
                "attributes": {a.key: value_of(a.value) for a in span.attributes},
                "status": {"code": span.status.code, "message": span.status.message},
                "service": resource.get("service.name"),
            })
print(json.dumps(spans))
