"""Offline checks of the rendered manifests that need more than a diff.

Usage: validate.py MANIFESTS_FILE RULES_DIR CRD_FILE EXAMPLE...

1. The rules ConfigMap holds exactly the files of RULES_DIR, byte for byte.
2. No container mounts the rules volume with subPath/subPathExpr.
3. The Deployment keeps its hardening (non-root, read-only root filesystem,
   no capabilities, seccomp RuntimeDefault, probes, requests and limits).
4. Every example WorkflowExecution is valid against the CRD's
   openAPIV3Schema (unknown fields rejected, as `kubectl --validate=strict`
   would), and the validator rejects known-bad variants (so it is not
   vacuous).
Exit status 1 with one line per problem.
"""

import copy
import os
import sys

import jsonschema
import yaml

problems = []


def fail(msg):
    problems.append(msg)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check_rules_configmap(objs, rules_dir):
    cms = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-rules")]
    if len(cms) != 1:
        fail(f"expected one rules ConfigMap, found {len(cms)}")
        return
    data = cms[0].get("data") or {}
    want = {}
    for name in sorted(os.listdir(rules_dir)):
        p = os.path.join(rules_dir, name)
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                want[name] = f.read()
    for name in sorted(set(want) | set(data)):
        if name not in data:
            fail(f"rules ConfigMap lacks {name} (present in {rules_dir}/)")
        elif name not in want:
            fail(f"rules ConfigMap has {name}, which is not in {rules_dir}/")
        elif data[name] != want[name]:
            fail(f"rules ConfigMap key {name} differs from {rules_dir}/{name}")
    size = sum(len(v.encode()) for v in data.values())
    if size > 1024 * 1024:
        fail(f"rules ConfigMap is {size} bytes; a ConfigMap holds at most 1 MiB")


def pod_specs(objs):
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o, o["spec"]["template"]["spec"]


def check_deployment(objs):
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    if len(deployments) != 1:
        fail(f"expected one Deployment, found {len(deployments)}")
    for obj, spec in pod_specs(objs):
        name = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        rules_vols = {
            v["name"] for v in spec.get("volumes", []) if "rules" in v["name"] or (
                "configMap" in v and "rules" in v["configMap"].get("name", ""))
        }
        psc = spec.get("securityContext", {})
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{name}: pod seccompProfile is not RuntimeDefault")
        if not psc.get("runAsNonRoot"):
            fail(f"{name}: pod does not set runAsNonRoot")
        for c in spec["containers"] + spec.get("initContainers", []):
            cname = f'{name} container {c["name"]}'
            for m in c.get("volumeMounts", []):
                if (m["name"] in rules_vols or "rules" in m["mountPath"]) and (
                        "subPath" in m or "subPathExpr" in m):
                    fail(f"{cname}: the rules volume is mounted with subPath (never updated by the kubelet)")
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(f"{cname}: root filesystem is not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(f"{cname}: allowPrivilegeEscalation is not false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{cname}: capabilities are not dropped (drop: [ALL])")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                fail(f"{cname}: requests and limits must both be set")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = c.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    fail(f"{cname}: {probe} path is {got!r}, want {path}")
            if not any(m["mountPath"] == "/etc/wfe-engine/rules" for m in c.get("volumeMounts", [])):
                fail(f"{cname}: rules are not mounted at /etc/wfe-engine/rules")


def to_json_schema(s):
    """OpenAPI v3 structural schema -> JSON Schema: `nullable` becomes a null
    type, x-kubernetes-* extensions are dropped, and objects that list their
    properties reject unknown ones (unless they preserve unknown fields)."""
    if isinstance(s, list):
        return [to_json_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k.startswith("x-kubernetes-") or k == "nullable":
            continue
        if k in ("properties", "patternProperties"):
            out[k] = {name: to_json_schema(sub) for name, sub in v.items()}
        else:
            out[k] = to_json_schema(v)
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in s and "additionalProperties" not in s
            and not s.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_validator(crd_path):
    crd = load_all(crd_path)[0]
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    versions = {}
    for v in crd["spec"]["versions"]:
        schema = to_json_schema(v["schema"]["openAPIV3Schema"])
        # metadata is validated by the API server itself, not by the CRD.
        schema.setdefault("properties", {})["metadata"] = {"type": "object"}
        schema["properties"]["apiVersion"] = {"const": f'{group}/{v["name"]}'}
        schema["properties"]["kind"] = {"const": kind}
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
        versions[f'{group}/{v["name"]}'] = jsonschema.Draft7Validator(
            schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return versions


def errors_of(validators, obj):
    v = validators.get(obj.get("apiVersion"))
    if v is None:
        return [f"apiVersion {obj.get('apiVersion')!r} is not served by the CRD"]
    return [f'{"/".join(map(str, e.absolute_path)) or "<root>"}: {e.message}'
            for e in sorted(v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]


def check_examples(crd_path, examples):
    validators = crd_validator(crd_path)
    checked = 0
    sample = None
    for path in examples:
        for obj in load_all(path):
            checked += 1
            errs = errors_of(validators, obj)
            for e in errs:
                fail(f"{path}: {obj.get('metadata', {}).get('name')}: {e}")
            if not errs and sample is None:
                sample = obj
    if sample is None:
        fail("no valid example WorkflowExecution found")
        return
    # The validator must refuse what the API server would refuse.
    bad = []
    b = copy.deepcopy(sample); b["spec"].pop("targetResource"); bad.append(("missing targetResource", b))
    b = copy.deepcopy(sample); b["spec"]["workflowRef"]["executionEngine"] = "ansible"; bad.append(("engine ansible", b))
    b = copy.deepcopy(sample); b["spec"]["workflowRef"]["executionBundel"] = "x"; bad.append(("misspelt field", b))
    b = copy.deepcopy(sample); b["spec"]["parameters"] = {"N": 3}; bad.append(("non-string parameter", b))
    b = copy.deepcopy(sample); b["apiVersion"] = "kubernaut.ai/v1"; bad.append(("unserved version", b))
    for what, obj in bad:
        if not errors_of(validators, obj):
            fail(f"schema self-test: a WorkflowExecution with {what} was accepted")
    print(f"examples: {checked} WorkflowExecution(s) checked against {crd_path}; {len(bad)} known-bad variants refused")


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    manifests, rules_dir, crd_path, examples = argv[1], argv[2], argv[3], argv[4:]
    objs = load_all(manifests)
    check_rules_configmap(objs, rules_dir)
    check_deployment(objs)
    check_examples(crd_path, examples)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
