#!/usr/bin/env bash
# Regenerates what deploy/ derives from the repository:
#   - the chart's copies of rules/ and deploy/crd.yaml,
#   - the Kubernetes definitions in the chart's values.schema.json (from
#     k8s-openapi, `cargo run --example chart_schema`),
#   - the plain manifests in deploy/manifests/ (helm template of the chart).
# .ci/deploy-check fails when any of these drift. Needs python3, PyPI and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/tools.sh
ensure_tools

# The chart carries exact copies: helm can only read files inside the chart.
rm -rf "$CHART_DIR/rules"
mkdir -p "$CHART_DIR/rules" "$CHART_DIR/crds"
cp rules/* "$CHART_DIR/rules/"
cp deploy/crd.yaml "$CHART_DIR/crds/workflowexecutions.kubernaut.ai.yaml"
cargo run -q --example chart_schema -- "$CHART_DIR/values.schema.json"

mkdir -p deploy/manifests/optional
render_main > deploy/manifests/wfe-engine.yaml
render_optional serviceMonitor > deploy/manifests/optional/servicemonitor.yaml
render_optional prometheusRule > deploy/manifests/optional/prometheusrule.yaml
render_optional grafanaDashboard > deploy/manifests/optional/grafanadashboard.yaml
render_execution_namespace > deploy/manifests/optional/execution-namespace.yaml
echo "rendered deploy/manifests/ from $CHART_DIR"
