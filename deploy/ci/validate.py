"""Offline checks of the chart's renders that need more than a diff.

Usage:
  validate.py render FILE --rules DIR [--extra-rule NAME=PATH]... [--source api|volume]
                     [--existing-configmap NAME] [--shadow-configmap NAME] [--no-pod-hardening]
                     [--expect KIND]... [--expect-no KIND]...
  validate.py examples CRD_FILE EXAMPLE...
  validate.py runbooks RENDER_FILE OPERATIONS_MD
  validate.py metrics SRC_DIR FILE...

render    One `helm template` output:
          1. the rules ConfigMap holds exactly DIR's files plus the extra
             rules, byte for byte (none rendered with --existing-configmap);
          2. the rules reach the engine: source api -> `--rules-configmap`
             names the ConfigMap, and a Role grants get/list/watch on it by
             resourceNames (and Events), bound to the ServiceAccount; source
             volume -> the ConfigMap is mounted as a directory (no subPath);
             a candidate in shadow (--shadow-configmap) is read the same
             way through the API, by its own Role on that name only; none
             is configured without it;
          3. the Deployment keeps its hardening (non-root, read-only root
             filesystem, no capabilities, seccomp RuntimeDefault, probes,
             requests and limits; the pod part not with --no-pod-hardening);
          4. the kinds expected are there, the ones refused are not; a
             created execution namespace is kept on uninstall and carries
             Pod Security labels.
examples  Every example WorkflowExecution is valid against the CRD's
          openAPIV3Schema (unknown fields rejected, as `kubectl
          --validate=strict` would), and known-bad variants are refused.
runbooks  Every alert has a runbook_url whose anchor is a heading of
          docs/operations.md (GitHub's heading anchors).
metrics   Every metric named in the FILEs (alert expressions, dashboard
          queries) is registered somewhere under SRC_DIR.
Exit status 1 with one line per problem.
"""

import argparse
import copy
import json
import os
import re
import sys

import jsonschema
import yaml

problems = []


def fail(msg):
    problems.append(msg)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


# ---------------------------------------------------------------- render

def rules_configmaps(objs):
    return [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-rules")]


def check_rules_configmap(objs, rules_dir, extra, existing):
    cms = rules_configmaps(objs)
    if existing:
        if cms:
            fail(f"rules.existingConfigMap={existing} but the chart rendered {cms[0]['metadata']['name']}")
        return None
    if len(cms) != 1:
        fail(f"expected one rules ConfigMap, found {len(cms)}")
        return None
    data = cms[0].get("data") or {}
    want = {}
    for name in sorted(os.listdir(rules_dir)):
        p = os.path.join(rules_dir, name)
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                want[name] = f.read()
    for name, path in extra.items():
        with open(path, encoding="utf-8") as f:
            want[name] = f.read()
    for name in sorted(set(want) | set(data)):
        if name not in data:
            fail(f"rules ConfigMap lacks {name}")
        elif name not in want:
            fail(f"rules ConfigMap has {name}, which is neither in {rules_dir}/ nor an extra rule")
        elif data[name] != want[name]:
            fail(f"rules ConfigMap key {name} differs from its source")
    size = sum(len(v.encode()) for v in data.values())
    if size > 1024 * 1024:
        fail(f"rules ConfigMap is {size} bytes; a ConfigMap holds at most 1 MiB")
    return cms[0]["metadata"]


def pod_specs(objs):
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o, o["spec"]["template"]["spec"]


def deployment(objs):
    ds = [o for o in objs if o["kind"] == "Deployment"]
    if len(ds) != 1:
        fail(f"expected one Deployment, found {len(ds)}")
        return None
    return ds[0]


def check_hardening(objs, pod_hardening):
    for obj, spec in pod_specs(objs):
        name = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        psc = spec.get("securityContext", {})
        if pod_hardening:
            if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                fail(f"{name}: pod seccompProfile is not RuntimeDefault")
            if not psc.get("runAsNonRoot"):
                fail(f"{name}: pod does not set runAsNonRoot")
        elif "runAsUser" in psc or "fsGroup" in psc:
            fail(f"{name}: podSecurityContext {{}} must leave the UID to the platform, got {psc}")
        for c in spec["containers"] + spec.get("initContainers", []):
            cname = f'{name} container {c["name"]}'
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


def engine_container(dep):
    cs = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "wfe-engine"]
    return cs[0] if cs else None


def configmap_grants(objs, ns):
    """(Role name, rule) for every rule of a Role in `ns` granting get/list/watch on ConfigMaps."""
    out = []
    for r in (o for o in objs if o["kind"] == "Role" and o["metadata"]["namespace"] == ns):
        for rule in r.get("rules", []):
            if ("configmaps" in rule.get("resources", []) and "" in rule.get("apiGroups", [])
                    and {"get", "list", "watch"} <= set(rule.get("verbs", []))):
                out.append((r, rule))
    return out


def check_role_bound(objs, role_name, sa, what):
    roles = [o for o in objs if o["kind"] == "Role" and o["metadata"]["name"] == role_name]
    events = any("events" in rule.get("resources", []) and "create" in rule.get("verbs", [])
                 for r in roles for rule in r["rules"])
    if not events:
        fail(f"Role {role_name}: no create on events ({what})")
    bound = [b for b in objs if b["kind"] == "RoleBinding" and b["roleRef"]["name"] == role_name
             and any(s.get("name") == sa for s in b.get("subjects", []))]
    if not bound:
        fail(f"Role {role_name} is not bound to the ServiceAccount {sa}")


def check_shadow(objs, shadow):
    dep = deployment(objs)
    c = dep and engine_container(dep)
    if not c:
        return
    ns = dep["metadata"]["namespace"]
    args = [a for a in c.get("args", []) if a.startswith("--shadow-rules")]
    if not shadow:
        if args:
            fail(f"no candidate in shadow configured, but the engine gets {args}")
        return
    want = f"--shadow-rules-configmap={ns}/{shadow}"
    if args != [want]:
        fail(f"shadow: args {args} are not [{want}]")
    granting = [r["metadata"]["name"] for r, rule in configmap_grants(objs, ns)
                if rule.get("resourceNames") == [shadow]]
    if len(granting) != 1:
        fail(f"expected one Role granting get/list/watch on the shadow ConfigMap {shadow}, found {granting}")
        return
    check_role_bound(objs, granting[0], dep["spec"]["template"]["spec"].get("serviceAccountName"),
                     "ShadowRulesApplied/ShadowRulesRejected")


def check_rules_delivery(objs, source, cm_name, shadow=""):
    dep = deployment(objs)
    c = dep and engine_container(dep)
    if not c:
        fail("no wfe-engine container")
        return
    args = c.get("args", [])
    spec = dep["spec"]["template"]["spec"]
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/wfe-engine/rules"]
    for m in c.get("volumeMounts", []):
        if "rules" in m["mountPath"] and ("subPath" in m or "subPathExpr" in m):
            fail(f"{m['name']}: the rules volume is mounted with subPath (never updated by the kubelet)")
    ns = dep["metadata"]["namespace"]
    if source == "volume":
        if "--rules=/etc/wfe-engine/rules" not in args:
            fail(f"source volume: args {args} do not read /etc/wfe-engine/rules")
        if not mounts:
            fail("source volume: the rules are not mounted at /etc/wfe-engine/rules")
        return
    want = f"--rules-configmap={ns}/{cm_name}"
    if want not in args:
        fail(f"source api: args {args} lack {want}")
    if mounts or any(a.startswith("--rules=") for a in args):
        fail("source api: the rules are mounted or passed as a directory as well")
    sa = spec.get("serviceAccountName")
    granting = []
    for r, rule in configmap_grants(objs, ns):
        names = rule.get("resourceNames")
        if shadow and names == [shadow]:
            continue  # the candidate's own Role (check_shadow)
        if names != [cm_name]:
            fail(f"Role {r['metadata']['name']}: configmaps granted without resourceNames: [{cm_name}] "
                 f"(got {names})")
        else:
            granting.append(r["metadata"]["name"])
    if len(granting) != 1:
        fail(f"expected one Role granting get/list/watch on ConfigMap {cm_name}, found {granting}")
        return
    check_role_bound(objs, granting[0], sa, "RulesApplied/RulesRejected")


def check_kinds(objs, expect, expect_no):
    kinds = {o["kind"] for o in objs}
    for k in expect:
        if k not in kinds:
            fail(f"expected a {k} in the render")
    for k in expect_no:
        if k in kinds:
            fail(f"the render has a {k}, which it should not")


def check_execution_namespace(objs):
    dep = deployment(objs)
    c = dep and engine_container(dep)
    exec_ns = next((a.split("=", 1)[1] for a in (c or {}).get("args", [])
                    if a.startswith("--execution-namespace=")), None)
    for ns in (o for o in objs if o["kind"] == "Namespace" and o["metadata"]["name"] == exec_ns):
        meta = ns["metadata"]
        if meta.get("annotations", {}).get("helm.sh/resource-policy") != "keep":
            fail(f"Namespace {exec_ns} is created without helm.sh/resource-policy: keep")
        labels = meta.get("labels", {})
        for mode in ("enforce", "warn", "audit"):
            if labels.get(f"pod-security.kubernetes.io/{mode}") not in ("privileged", "baseline", "restricted"):
                fail(f"Namespace {exec_ns}: no pod-security.kubernetes.io/{mode} level")


def cmd_render(a):
    objs = load_all(a.file)
    extra = dict(e.split("=", 1) for e in a.extra_rule)
    meta = check_rules_configmap(objs, a.rules, extra, a.existing_configmap)
    cm_name = a.existing_configmap or (meta and meta["name"])
    if cm_name:
        check_rules_delivery(objs, a.source, cm_name, a.shadow_configmap)
    check_shadow(objs, a.shadow_configmap)
    check_hardening(objs, not a.no_pod_hardening)
    check_kinds(objs, a.expect, a.expect_no)
    check_execution_namespace(objs)


# ---------------------------------------------------------------- examples

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


def cmd_examples(a):
    validators = crd_validator(a.crd)
    checked = 0
    sample = None
    for path in a.examples:
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
    print(f"examples: {checked} WorkflowExecution(s) checked against {a.crd}; {len(bad)} known-bad variants refused")


# ---------------------------------------------------------------- runbooks

def github_anchor(heading):
    """The id GitHub gives a Markdown heading: lowercased, punctuation other
    than '-' and '_' dropped, spaces turned into '-'."""
    text = re.sub(r"`|\*\*|\*|_(?=\W)|\[|\]\([^)]*\)", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(md_path):
    seen = {}
    out = set()
    in_code = False
    with open(md_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                in_code = not in_code
            if in_code:
                continue
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            base = github_anchor(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def cmd_runbooks(a):
    before = len(problems)
    anchors = anchors_of(a.operations_md)
    alerts = 0
    for obj in load_all(a.file):
        if obj["kind"] != "PrometheusRule":
            continue
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                alerts += 1
                url = rule.get("annotations", {}).get("runbook_url")
                if not url:
                    fail(f"alert {rule['alert']} has no runbook_url")
                    continue
                page, _, anchor = url.partition("#")
                if not page.endswith("docs/operations.md"):
                    fail(f"alert {rule['alert']}: runbook_url {url} is not docs/operations.md")
                if anchor not in anchors:
                    fail(f"alert {rule['alert']}: #{anchor} is not a heading of {a.operations_md}")
    if alerts == 0:
        fail(f"{a.file}: no alerts found")
    if len(problems) == before:
        print(f"runbooks: {alerts} alert(s), each with a runbook_url at a heading of {a.operations_md}")


# ---------------------------------------------------------------- metrics

METRIC = re.compile(r"\b((?:wfe|workflowexecution)_[a-z0-9_]+)")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def registered_metrics(src_dir):
    names = set()
    for root, _, files in os.walk(src_dir):
        for f in files:
            if f.endswith(".rs"):
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    names.update(re.findall(r'"((?:wfe|workflowexecution)_[a-z0-9_]+)"', fh.read()))
    return names


def cmd_metrics(a):
    before = len(problems)
    known = registered_metrics(a.src)
    used = set()
    for path in a.files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Only PromQL: alert expressions and dashboard queries.
        exprs = re.findall(r'"expr":\s*"((?:[^"\\]|\\.)*)"', text) + re.findall(r"^\s*expr:\s*(.*)$", text, re.M)
        for e in exprs:
            used.update(METRIC.findall(e))
    for name in sorted(used):
        base = name
        for suffix in HISTOGRAM_SERIES:
            if name.endswith(suffix) and name[: -len(suffix)] in known:
                base = name[: -len(suffix)]
        if base not in known:
            fail(f"metric {name} is used but not registered under {a.src}")
    if not used:
        fail(f"no metrics found in {a.files}")
    if len(problems) == before:
        print(f"metrics: {len(used)} metric name(s) used, all registered under {a.src}")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("file")
    r.add_argument("--rules", required=True)
    r.add_argument("--extra-rule", action="append", default=[])
    r.add_argument("--source", choices=["api", "volume"], default="api")
    r.add_argument("--existing-configmap", default="")
    r.add_argument("--shadow-configmap", default="")
    r.add_argument("--no-pod-hardening", action="store_true")
    r.add_argument("--expect", action="append", default=[])
    r.add_argument("--expect-no", action="append", default=[])
    e = sub.add_parser("examples")
    e.add_argument("crd")
    e.add_argument("examples", nargs="+")
    b = sub.add_parser("runbooks")
    b.add_argument("file")
    b.add_argument("operations_md")
    m = sub.add_parser("metrics")
    m.add_argument("src")
    m.add_argument("files", nargs="+")
    a = p.parse_args(argv[1:])
    {"render": cmd_render, "examples": cmd_examples, "runbooks": cmd_runbooks, "metrics": cmd_metrics}[a.cmd](a)
    for msg in problems:
        print(f"FAIL {msg}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
