"""Parses a Prometheus text exposition with the official Python client's
parser (a third-party check that /metrics is valid) and prints the samples
as one JSON list: [{"name", "labels", "value"}]. Reads stdin."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
print(json.dumps(samples))
