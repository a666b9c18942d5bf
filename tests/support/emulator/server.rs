//! HTTP front end: path routing, query parsing, fault injection, logging,
//! and the translation of store results into Kubernetes responses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Value};

use super::discovery;
use super::error::ApiError;
use super::faults::Faults;
use super::kinds::Propagation;
use super::log::{LogEntry, RequestLog, Verb};
use super::managed_fields::{FieldOp, Writer};
use super::patch::{self, PatchKind};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{DeleteOpts, Store};
use super::watch::{self, WatchRequest};

/// Server tunables (see `EmulatorBuilder`).
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub bookmark_interval: Duration,
    /// Upper bound on a watch's lifetime whatever `timeoutSeconds` says.
    pub max_watch_timeout: Option<Duration>,
}

pub struct App {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub log: Arc<RequestLog>,
    pub addr: String,
    pub opts: ServerOptions,
}

enum Route {
    Version,
    CoreVersions,
    GroupList,
    Group(String),
    Resources(String, String),
    Object {
        ty: usize,
        ns: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
    Unknown,
}

fn parse_route(app: &App, path: &str) -> Route {
    let seg: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match seg.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::GroupList,
        ["apis", g] => return Route::Group(g.to_string()),
        ["api", v] => return Route::Resources(String::new(), v.to_string()),
        ["apis", g, v] => return Route::Resources(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::Unknown,
    };
    let namespaced_path =
        rest.len() >= 3 && rest[0] == "namespaces" && !matches!(rest[2], "status" | "finalize");
    let (ns, plural, name, sub) = if namespaced_path {
        (Some(rest[1]), rest[2], rest.get(3), rest.get(4))
    } else {
        (None, rest[0], rest.get(1), rest.get(2))
    };
    if rest.len() > if namespaced_path { 5 } else { 3 } {
        return Route::Unknown;
    }
    let Some(ty) = app.store.registry.find(group, version, plural) else {
        return Route::Unknown;
    };
    let k = &app.store.registry.kinds[ty];
    // Namespaced objects need a namespace in the path; cluster-scoped ones must not have one.
    if (!k.namespaced && ns.is_some()) || (k.namespaced && ns.is_none() && name.is_some()) {
        return Route::Unknown;
    }
    Route::Object {
        ty,
        ns: ns.map(String::from),
        name: name.map(|s| s.to_string()),
        sub: sub.map(|s| s.to_string()),
    }
}

fn json_response(code: u16, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code(), &e.status())
}

#[derive(Serialize)]
struct ListOut<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Value,
    items: Vec<&'a Value>,
}

/// The one handler behind every path.
pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    app.faults.wait_unpaused().await;
    let (parts, body) = req.into_parts();
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let route = parse_route(&app, parts.uri.path());
    let (verb, kind, group, ns, name, sub) = match &route {
        Route::Object { ty, ns, name, sub } => {
            let k = &app.store.registry.kinds[*ty];
            let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
            let verb = match (&parts.method, name.is_some(), watching) {
                (&Method::GET, _, true) => Verb::Watch,
                (&Method::GET, true, _) => Verb::Get,
                (&Method::GET, false, _) => Verb::List,
                (&Method::POST, _, _) => Verb::Create,
                (&Method::PUT, _, _) => Verb::Update,
                (&Method::PATCH, _, _) => Verb::Patch,
                (&Method::DELETE, true, _) => Verb::Delete,
                (&Method::DELETE, false, _) => Verb::DeleteCollection,
                _ => Verb::Get,
            };
            (
                verb,
                k.kind.to_string(),
                k.group.to_string(),
                ns.clone(),
                name.clone(),
                sub.clone(),
            )
        }
        _ => (
            Verb::Discovery,
            String::new(),
            String::new(),
            None,
            None,
            None,
        ),
    };
    let verdict = app.faults.verdict(verb, &kind);
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    let resp = match verdict.fail_with {
        Some(code) => error_response(&ApiError::Injected {
            code,
            message: format!("injected fault: {verb:?} {kind} failed with {code}"),
        }),
        None => {
            let bytes = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let ct = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let conflict = verdict.conflict
                && (verb == Verb::Update || bytes.windows(15).any(|w| w == b"resourceVersion"));
            if conflict {
                let res = match &route {
                    Route::Object { ty, .. } => app.store.registry.kinds[*ty].resource_name(),
                    _ => String::new(),
                };
                error_response(&ApiError::stale(&res, name.as_deref().unwrap_or("")))
            } else {
                let user_agent = parts
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let request = ApiRequest {
                    method: &parts.method,
                    uri: &parts.uri,
                    query: &query,
                    content_type: &ct,
                    user_agent,
                };
                match dispatch(&app, &route, &request, bytes) {
                    Ok(r) => r,
                    Err(e) => error_response(&e),
                }
            }
        }
    };
    app.log.push(LogEntry {
        verb,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        kind,
        group,
        namespace: ns,
        name,
        subresource: sub,
        status: resp.status().as_u16(),
        duration: started.elapsed(),
        at: started,
    });
    resp
}

fn selectors(
    app: &App,
    ty: usize,
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::BadRequest)?;
    let k = &app.store.registry.kinds[ty];
    let mut allowed = vec!["metadata.name", "metadata.namespace"];
    allowed.extend_from_slice(k.extra_fields);
    let fields = FieldSelector::parse(
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        &allowed,
    )
    .map_err(ApiError::BadRequest)?;
    Ok((labels, fields))
}

fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("error decoding request body: {e}")))
}

fn dry_run(q: &HashMap<String, String>) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

/// What `dispatch` reads of a request besides its route and body.
struct ApiRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    query: &'a HashMap<String, String>,
    content_type: &'a str,
    user_agent: &'a str,
}

fn dispatch(
    app: &App,
    route: &Route,
    req: &ApiRequest<'_>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (method, uri, q, content_type) = (req.method, req.uri, req.query, req.content_type);
    let reg = &app.store.registry;
    let (ty, ns, name, sub) = match route {
        Route::Version => return Ok(json_response(200, &discovery::version())),
        Route::CoreVersions => return Ok(json_response(200, &discovery::core_versions(&app.addr))),
        Route::GroupList => return Ok(json_response(200, &discovery::group_list(reg))),
        Route::Group(g) => {
            return discovery::group(reg, g)
                .map(|d| json_response(200, &d))
                .ok_or_else(|| ApiError::not_found("", uri.path()))
        }
        Route::Resources(g, v) => {
            return discovery::resource_list(reg, g, v)
                .map(|d| json_response(200, &d))
                .ok_or_else(|| ApiError::not_found("", uri.path()))
        }
        Route::Unknown => {
            return Err(ApiError::NotFound {
                resource: String::new(),
                name: uri.path().to_string(),
            })
        }
        Route::Object { ty, ns, name, sub } => {
            (*ty, ns.as_deref(), name.as_deref(), sub.as_deref())
        }
    };
    let k = &reg.kinds[ty];
    let status = match sub {
        None => false,
        Some("status") if k.status_subresource => true,
        Some(s) => {
            return Err(ApiError::not_found(
                k.resource_name(),
                format!("{}/{s}", name.unwrap_or("")),
            ))
        }
    };
    let ns_key = if k.namespaced { ns.unwrap_or("") } else { "" };
    let writer = Writer {
        manager: Writer::manager_from(
            q.get("fieldManager").map(String::as_str),
            Some(req.user_agent),
        ),
        subresource: status.then(|| "status".to_string()),
        api_version: k.api_version(),
    };
    match (method, name) {
        (&Method::GET, Some(name)) => Ok(json_response(200, &*app.store.get(ty, ns_key, name)?)),
        (&Method::GET, None) => {
            let (labels, fields) = selectors(app, ty, q)?;
            if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) {
                let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
                let from = match rv {
                    "" | "0" => None,
                    r => Some(r.parse::<u64>().map_err(|_| {
                        ApiError::BadRequest(format!("invalid resource version: {r}"))
                    })?),
                };
                let mut timeout = q
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1800));
                if let Some(max) = app.opts.max_watch_timeout {
                    timeout = timeout.min(max);
                }
                let req = WatchRequest {
                    ty,
                    ns: ns.map(String::from),
                    labels,
                    fields,
                    from,
                    send_initial_events: q.get("sendInitialEvents").is_some_and(|v| v == "true"),
                    bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
                    timeout,
                    bookmark_interval: app.opts.bookmark_interval,
                };
                let rx = watch::start(app.store.clone(), app.faults.clone(), req);
                return Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(rx))
                    .map_err(|e| ApiError::Internal(e.to_string()));
            }
            let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok());
            let page = app.store.list(
                ty,
                ns,
                &labels,
                &fields,
                limit,
                q.get("continue").map(String::as_str),
            )?;
            let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
            if let Some(c) = page.continue_token {
                meta["continue"] = json!(c);
            }
            if let Some(r) = page.remaining {
                meta["remainingItemCount"] = json!(r);
            }
            Ok(json_response(
                200,
                &ListOut {
                    kind: format!("{}List", k.kind),
                    api_version: k.api_version(),
                    metadata: meta,
                    items: page.items.iter().map(|a| &**a).collect(),
                },
            ))
        }
        (&Method::POST, None) => {
            let obj = parse_body(&body)?;
            Ok(json_response(
                201,
                &*app
                    .store
                    .create(ty, ns_key, obj, &FieldOp::Update(&writer), dry_run(q))?,
            ))
        }
        (&Method::PUT, Some(name)) => {
            let obj = parse_body(&body)?;
            Ok(json_response(
                200,
                &*app
                    .store
                    .update(ty, ns_key, name, obj, status, &writer, dry_run(q))?,
            ))
        }
        (&Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"))
            })?;
            let patch_body = if kind == PatchKind::Apply {
                if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return Err(ApiError::BadRequest(
                        "PATCH requests with apply content type require fieldManager".into(),
                    ));
                }
                patch::parse_apply_body(&body).map_err(ApiError::BadRequest)?
            } else {
                parse_body(&body)?
            };
            let existed = app.store.get(ty, ns_key, name).is_ok();
            let op = if kind == PatchKind::Apply {
                FieldOp::Apply {
                    writer: &writer,
                    config: &patch_body,
                    force: q.get("force").is_some_and(|f| f == "true"),
                }
            } else {
                FieldOp::Update(&writer)
            };
            let obj =
                app.store
                    .patch(ty, ns_key, name, kind, &patch_body, status, &op, dry_run(q))?;
            Ok(json_response(if existed { 200 } else { 201 }, &*obj))
        }
        (&Method::DELETE, Some(name)) => {
            let opts = delete_opts(&body, q)?;
            Ok(json_response(
                200,
                &*app.store.delete(ty, ns_key, name, &opts)?,
            ))
        }
        (&Method::DELETE, None) => {
            let opts = delete_opts(&body, q)?;
            let (labels, fields) = selectors(app, ty, q)?;
            let gone = app
                .store
                .delete_collection(ty, ns, &labels, &fields, &opts)?;
            Ok(json_response(
                200,
                &ListOut {
                    kind: format!("{}List", k.kind),
                    api_version: k.api_version(),
                    metadata: json!({"resourceVersion": app.store.current_rv().to_string()}),
                    items: gone.iter().map(|a| &**a).collect(),
                },
            ))
        }
        _ => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            uri.path()
        ))),
    }
}

fn delete_opts(body: &[u8], q: &HashMap<String, String>) -> Result<DeleteOpts, ApiError> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        parse_body(body)?
    };
    let policy_text = v
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| q.get("propagationPolicy").cloned());
    let mut propagation = match policy_text {
        Some(p) => Some(Propagation::parse(&p).ok_or_else(|| {
            ApiError::BadRequest(format!("propagationPolicy: Unsupported value: \"{p}\""))
        })?),
        None => None,
    };
    if propagation.is_none() {
        match v.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => propagation = Some(Propagation::Orphan),
            Some(false) => propagation = Some(Propagation::Background),
            None => {}
        }
    }
    let dry = v
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == "All"))
        || dry_run(q);
    Ok(DeleteOpts {
        propagation,
        uid: v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        resource_version: v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        dry_run: dry,
    })
}
