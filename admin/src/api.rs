//! The admin REST API (`admin/openapi.json`) and the console's assets.
//!
//! Every `/admin/api/` route but login and the OpenAPI document needs a session; every
//! request that changes something also needs the session's CSRF token and, when the
//! browser names one, the service's own origin (ADR 0023). Every response carries the
//! security headers (a Content-Security-Policy allowing this origin's script and style
//! only, no framing, no sniffing, no referrer).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pactum_client::changes::{self, GOVERNANCE_GAS};
use pactum_client::{ClientError, NodeClient, parse_hex_array, sign_payload};
use pactum_types::crypto::Keypair;
use pactum_types::interface::Interface;
use pactum_types::{GovernanceAction, GovernanceChange, Hash, Payload, PublicKey};
use serde::Deserialize;
use serde_json::{Value, json};

use pactum_http::{ApiError, JsonBody};

use crate::Console;
use crate::audit::{Entry, to_csv};
use crate::session::{COOKIE, IDLE_MAX, Session, constant_time_equal, cookie_value};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
/// The admin API's OpenAPI document.
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

/// The largest request body: a contract's code in hex, or a wizard's certificates and
/// join requests.
const BODY_BYTES_MAX: usize = 2 * pactum_types::limits::CONTRACT_CODE_BYTES_MAX + 64 * 1024;
/// The gas limit of the console's contract calls and deploys unless the operator sets one.
const CONTRACT_GAS_DEFAULT: u64 = 100_000_000;
/// How long a signed action waits for its transaction to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// How long the overview waits for each validator's status.
const PEER_STATUS_WAIT: Duration = Duration::from_secs(2);
/// What the console may read from the node, by the first segment after `/v1/`.
const READABLE: &[&str] = &[
    "status",
    "consortium",
    "epochs",
    "proposals",
    "blocks",
    "chain",
    "transactions",
    "accounts",
    "contracts",
    "state",
];
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub fn router(console: Arc<Console>) -> Router {
    let protected = Router::new()
        .route("/admin/api/session", get(session))
        .route("/admin/api/logout", post(logout))
        .route("/admin/api/node/{*path}", get(node_read))
        .route("/admin/api/events", get(crate::events::events))
        .route("/admin/api/overview", get(overview))
        .route("/admin/api/wizard", post(wizard))
        .route("/admin/api/proposals", post(propose))
        .route("/admin/api/proposals/{id}/{vote}", post(vote))
        .route("/admin/api/audit", get(audit))
        .route("/admin/api/identities", get(identities).post(add_identity))
        .route("/admin/api/contracts/deploy", post(deploy))
        .route("/admin/api/contracts/call", post(call))
        .route("/admin/api/contracts/query", post(query))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&console), require_session));
    Router::new()
        .merge(protected)
        .route("/admin/api/login", post(login))
        .route("/admin/api/openapi.json", get(openapi))
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/assets/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page") })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

/// What the console answers when the node (or what it was asked to send it) fails: the
/// operator's input is a 400, the node's refusal a 422, an unreachable node a 502.
fn client_error(error: &ClientError) -> ApiError {
    match error {
        ClientError::Invalid(_) => bad_request(error.to_string()),
        ClientError::Node { status, .. } if *status < 500 => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", error.to_string())
        }
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "node", error.to_string()),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn security_headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/admin/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::CACHE_CONTROL, if api { "no-store" } else { "no-cache" }),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether the request's `Origin`, if the browser sent one, is this service.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or("");
    origin.to_str().is_ok_and(|origin| origin == format!("https://{host}"))
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| cookie_value(value, COOKIE).map(str::to_owned))
}

/// Lets a request with an open session through (and hands the session to the handler);
/// a change also needs the CSRF token and this origin.
async fn require_session(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let Some(session) = session_cookie(headers).and_then(|id| console.sessions.touch(&id)) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "login_required", "log in first")
            .into_response();
    };
    if request.method() != Method::GET {
        let csrf = headers.get("x-csrf-token").and_then(|value| value.to_str().ok());
        if !csrf.is_some_and(|csrf| constant_time_equal(csrf.as_bytes(), session.csrf.as_bytes())) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "the request lacks this session's X-CSRF-Token",
            )
            .into_response();
        }
        if !same_origin(headers) {
            return ApiError::new(StatusCode::FORBIDDEN, "origin", "another origin's request")
                .into_response();
        }
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Runs `work` against the node on a blocking thread.
async fn blocking<T: Send + 'static>(
    console: &Arc<Console>,
    work: impl FnOnce(&Console) -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ApiError> {
    let console = Arc::clone(console);
    tokio::task::spawn_blocking(move || work(&console))
        .await
        .map_err(|error| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string())
        })?
        .map_err(|error| client_error(&error))
}

impl Console {
    /// Records an admin action; an action that cannot be recorded is not done.
    fn record(
        &self,
        session: &Session,
        action: &str,
        subject: &str,
        outcome: &str,
        transaction: Option<Hash>,
    ) -> Result<(), ApiError> {
        let entry = Entry {
            time_ms: pactum_clock::unix_millis(),
            session: session.number,
            action: action.to_owned(),
            subject: subject.to_owned(),
            outcome: outcome.to_owned(),
            transaction: transaction.map(|hash| hash.to_string()),
        };
        self.audit.record(&entry).map_err(|error| {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "audit",
                format!("the audit log cannot be written ({error}); nothing was done"),
            )
        })
    }

    /// Signs `action` with the admin key, submits it and waits for its commit: the
    /// transaction and the node's answer about it.
    fn govern(&self, action: GovernanceAction) -> Result<(Hash, Value), ClientError> {
        self.transact(&self.keypair, Payload::Governance { action }, GOVERNANCE_GAS)
    }

    /// Signs `payload` with `keypair` (its next nonce), submits it and waits for its commit.
    fn transact(
        &self,
        keypair: &Keypair,
        payload: Payload,
        gas_limit: u64,
    ) -> Result<(Hash, Value), ClientError> {
        let transaction = sign_payload(&self.node, keypair, payload, gas_limit, None)?;
        let hash = self.node.submit(&transaction)?;
        let answer = self.node.wait_committed(&hash, COMMIT_WAIT)?;
        Ok((hash, answer))
    }

    /// The key of identity `name`: the admin key for `admin`, else one the console keeps.
    fn actor(&self, name: &str) -> Result<Arc<Keypair>, ClientError> {
        if name == crate::identities::ADMIN {
            return Ok(Arc::clone(&self.keypair));
        }
        let identity = self.identities.load(name).map_err(ClientError::Invalid)?;
        Ok(Arc::new(identity.keypair))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

async fn login(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "origin", "another origin's request"));
    }
    let anonymous = Session::anonymous();
    let Some((id, session, next)) = console.sessions.login(&body.token) else {
        console.record(&anonymous, "login", "", "refused: wrong or used token", None)?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "that login token is wrong or was used already; the service prints a new one",
        ));
    };
    tracing::info!(session = session.number, "console login; the next login token is {next}");
    console.record(&session, "login", "", "ok", None)?;
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        crate::session::LIFETIME_MAX.as_secs()
    );
    let mut response = Json(json!({ "session": session.number })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a cookie of hex and ASCII is a header value"),
    );
    Ok(response)
}

async fn logout(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers) {
        console.sessions.logout(&id);
    }
    console.record(&session, "logout", "", "ok", None)?;
    let mut response = Json(json!({})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "pactum_console=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    Ok(response)
}

/// Who the console acts for: the admin key's identity as the node knows it, and the
/// session's CSRF token.
async fn session(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
) -> Result<Json<Value>, ApiError> {
    let key = console.keypair.public_key();
    let account = blocking(&console, move |console| {
        console.node.get(&format!("/v1/accounts/{key}"))?.into_success("the admin account")
    })
    .await?;
    Ok(Json(json!({
        "csrf": session.csrf,
        "session": session.number,
        "idle_seconds_max": IDLE_MAX.as_secs(),
        "admin_key": key,
        "organisation": account["organisation"],
        "role": account["role"],
        "enrolled": account["enrolled"],
        "node": console.node.base(),
    })))
}

/// A read of the node's REST API, passed through: `GET /admin/api/node/v1/...`.
async fn node_read(
    State(console): State<Arc<Console>>,
    path: Result<Path<String>, PathRejection>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let Path(path) = path.map_err(|rejection| bad_request(rejection.body_text()))?;
    let Some(rest) = path.strip_prefix("v1/") else {
        return Err(bad_request("only /v1/ reads pass through"));
    };
    let first = rest.split('/').next().unwrap_or("");
    if !READABLE.contains(&first) || path.split('/').any(|segment| segment == "..") {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_readable",
            format!("/{path} is not readable here"),
        ));
    }
    let target = match uri.query() {
        Some(query) => format!("/{path}?{query}"),
        None => format!("/{path}"),
    };
    let answer = blocking(&console, move |console| console.node.get(&target)).await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    Ok((status, Json(answer.body)).into_response())
}

/// The consortium's health at a glance, from this organisation's node and each
/// validator's own status.
async fn overview(State(console): State<Arc<Console>>) -> Result<Json<Value>, ApiError> {
    let key = console.keypair.public_key();
    blocking(&console, move |console| {
        let status = console.node.status()?;
        let consortium = console.node.get("/v1/consortium")?.into_success("the consortium")?;
        let open = console.node.get("/v1/proposals?status=open")?.into_success("proposals")?;
        let account =
            console.node.get(&format!("/v1/accounts/{key}"))?.into_success("the admin account")?;
        let organisation = account["organisation"].as_str().unwrap_or("").to_owned();
        let waiting: Vec<Value> = open["proposals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|proposal| {
                !proposal["votes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|vote| vote["organisation"] == organisation.as_str())
            })
            .map(|proposal| json!({ "id": proposal["id"], "title": proposal["title"] }))
            .collect();
        let metrics = console.node.get_text("/metrics").unwrap_or_default();
        Ok(json!({
            "organisation": organisation,
            "node": status,
            "validators": validator_health(console.node.base(), &consortium, &status),
            "planned_epoch": consortium["planned_epoch"],
            "waiting_for_us": waiting,
            "commit_latency": latency(&metrics),
        }))
    })
    .await
    .map(Json)
}

/// Each validator of the current and planned epochs: its own status, read from its REST
/// API (same scheme as this node's) within [`PEER_STATUS_WAIT`], and its lag behind the
/// highest height seen.
fn validator_health(base: &str, consortium: &Value, own: &Value) -> Vec<Value> {
    let scheme = if base.starts_with("https://") { "https" } else { "http" };
    let mut validators: Vec<Value> =
        consortium["validators"].as_array().cloned().unwrap_or_default();
    for planned in consortium["planned_epoch"]["validators"].as_array().into_iter().flatten() {
        if !validators.iter().any(|known| known["public_key"] == planned["public_key"]) {
            validators.push(planned.clone());
        }
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    for (position, validator) in validators.iter().enumerate() {
        let url = format!("{scheme}://{}", validator["api_address"].as_str().unwrap_or(""));
        let sender = sender.clone();
        std::thread::spawn(move || {
            let answer = NodeClient::connect(&url).and_then(|client| client.status());
            let _ = sender.send((position, answer.map_err(|error| error.to_string())));
        });
    }
    drop(sender);
    let mut statuses: Vec<Option<Result<Value, String>>> = vec![None; validators.len()];
    let watch = pactum_clock::Stopwatch::start();
    while let Some(left) = PEER_STATUS_WAIT.checked_sub(watch.elapsed()) {
        match receiver.recv_timeout(left) {
            Ok((position, answer)) => statuses[position] = Some(answer),
            Err(_) => break,
        }
    }
    let highest = statuses
        .iter()
        .flatten()
        .filter_map(|answer| answer.as_ref().ok())
        .filter_map(|status| status["height"].as_u64())
        .chain(own["height"].as_u64())
        .max()
        .unwrap_or(0);
    let current: Vec<&Value> = consortium["validators"].as_array().into_iter().flatten().collect();
    validators
        .iter()
        .zip(statuses)
        .map(|(validator, answer)| {
            let voting = current.iter().any(|known| known["public_key"] == validator["public_key"]);
            let mut row = json!({
                "name": validator["name"],
                "organisation": validator["organisation"],
                "index": validator["index"],
                "public_key": validator["public_key"],
                "api_address": validator["api_address"],
                "voting": voting,
                "primary": voting && own["primary"] == validator["name"],
            });
            match answer {
                Some(Ok(status)) => {
                    let height = status["height"].as_u64().unwrap_or(0);
                    row["reachable"] = json!(true);
                    row["height"] = json!(height);
                    row["lag"] = json!(highest.saturating_sub(height));
                    row["epoch"] = status["epoch"].clone();
                    row["view"] = status["view"].clone();
                }
                Some(Err(error)) => {
                    row["reachable"] = json!(false);
                    row["error"] = json!(error);
                }
                None => {
                    row["reachable"] = json!(false);
                    row["error"] = json!("no answer in time");
                }
            }
            row
        })
        .collect()
}

/// The commit latency histogram's sum and count, from the node's metrics.
fn latency(metrics: &str) -> Value {
    let read = |name: &str| {
        metrics.lines().find_map(|line| {
            line.strip_prefix(name).and_then(|rest| rest.trim().parse::<f64>().ok())
        })
    };
    json!({
        "sum_seconds": read("pactum_commit_latency_seconds_sum"),
        "count": read("pactum_commit_latency_seconds_count"),
    })
}

/// What a wizard collected; `kind` names the task.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Wizard {
    /// A new member and its validators, in one bundle.
    Onboard {
        ca_certificate_pem: String,
        join_requests: Vec<String>,
    },
    AddValidator {
        join_request: String,
    },
    RemoveValidator {
        public_key: String,
    },
    RevokeCertificate {
        certificate_pem: String,
    },
    /// Remove the validator, add it again with the join request's new key, and revoke its
    /// old certificate if asked.
    RotateKey {
        public_key: String,
        join_request: String,
        revoke_old: bool,
    },
    SetPolicy {
        class: pactum_types::ChangeClass,
        policy: pactum_types::Policy,
    },
    SetParameters {
        settings: Vec<(String, u64)>,
    },
    SetGasSchedule {
        settings: Vec<(String, u64)>,
    },
    /// Approve a module (hex) for deployment under the `by_proposal` deploy policy: the
    /// proposal names its SHA3-256 hash.
    ApproveCode {
        code: String,
    },
    /// Replace a deployed contract's code with a module (hex), keeping its state.
    UpgradeContract {
        contract: String,
        code: String,
    },
    SetDeployPolicy {
        policy: pactum_types::DeployPolicy,
    },
    /// Changes written out (JSON), as `pactum gov propose --changes` takes them.
    Changes {
        changes: Vec<GovernanceChange>,
    },
}

fn validator_key(text: &str) -> Result<PublicKey, ClientError> {
    Ok(PublicKey(parse_hex_array(text.trim(), "the validator's public key")?))
}

/// The changes a wizard's input stands for.
fn wizard_changes(node: &NodeClient, wizard: Wizard) -> Result<Vec<GovernanceChange>, ClientError> {
    let consortium = || node.get("/v1/consortium")?.into_success("the consortium");
    Ok(match wizard {
        Wizard::Onboard { ca_certificate_pem, join_requests } => {
            let mut changes = vec![changes::add_member(ca_certificate_pem.as_bytes())?];
            for request in &join_requests {
                changes.push(changes::add_validator(request)?);
            }
            changes
        }
        Wizard::AddValidator { join_request } => vec![changes::add_validator(&join_request)?],
        Wizard::RemoveValidator { public_key } => {
            vec![GovernanceChange::RemoveValidator { validator: validator_key(&public_key)? }]
        }
        Wizard::RevokeCertificate { certificate_pem } => {
            vec![changes::revoke_certificate(certificate_pem.as_bytes())?]
        }
        Wizard::RotateKey { public_key, join_request, revoke_old } => {
            let old = validator_key(&public_key)?;
            let mut changes = vec![
                GovernanceChange::RemoveValidator { validator: old },
                changes::add_validator(&join_request)?,
            ];
            if revoke_old {
                let consortium = consortium()?;
                let validator = consortium["validators"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|validator| validator["public_key"] == old.to_string().as_str())
                    .ok_or_else(|| ClientError::Invalid(format!("no validator has key {old}")))?;
                let serial = validator["certificate"]["serial"].as_str().unwrap_or("");
                changes.push(GovernanceChange::RevokeCertificate {
                    organisation: validator["organisation"].as_str().unwrap_or("").to_owned(),
                    serial: hex::decode(serial).map_err(|_| {
                        ClientError::Invalid(format!("the node served a bad serial {serial:?}"))
                    })?,
                });
            }
            changes
        }
        Wizard::SetPolicy { class, policy } => vec![GovernanceChange::SetPolicy { class, policy }],
        Wizard::SetParameters { settings } => {
            vec![changes::set_parameters(&consortium()?, &settings)?]
        }
        Wizard::SetGasSchedule { settings } => {
            vec![changes::set_gas_schedule(&consortium()?, &settings)?]
        }
        Wizard::ApproveCode { code } => {
            vec![GovernanceChange::ApproveCode {
                code_hash: pactum_types::hash::sha3_256(&module(&code)?),
            }]
        }
        Wizard::UpgradeContract { contract, code } => vec![GovernanceChange::UpgradeContract {
            contract: pactum_types::Address(parse_hex_array(
                contract.trim(),
                "the contract address",
            )?),
            code: module(&code)?,
        }],
        Wizard::SetDeployPolicy { policy } => vec![GovernanceChange::SetDeployPolicy { policy }],
        Wizard::Changes { changes } => changes,
    })
}

/// A WebAssembly module sent as hex.
fn module(hex_code: &str) -> Result<Vec<u8>, ClientError> {
    let code = hex::decode(hex_code.trim())
        .map_err(|_| ClientError::Invalid("the module is not hex".into()))?;
    if !code.starts_with(b"\0asm") {
        return Err(ClientError::Invalid("that file is not a WebAssembly module".into()));
    }
    Ok(code)
}

/// A wizard's changes and the node's dry run of them: every check's result, n, f and
/// quorum before and after, the approvals needed. Nothing is signed.
async fn wizard(
    State(console): State<Arc<Console>>,
    JsonBody(wizard): JsonBody<Wizard>,
) -> Result<Json<Value>, ApiError> {
    blocking(&console, move |console| {
        let changes = wizard_changes(&console.node, wizard)?;
        let body = json!({ "changes": changes });
        let dry_run = console.node.post_json("/v1/proposals/dry-run", &body)?;
        Ok(json!({ "changes": changes, "dry_run": dry_run.body }))
    })
    .await
    .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Propose {
    title: String,
    #[serde(default)]
    description: String,
    /// Blocks until it expires.
    #[serde(default = "default_expiry")]
    expires_in: u64,
    changes: Vec<GovernanceChange>,
}

fn default_expiry() -> u64 {
    10_000
}

/// Signs and submits a proposal of `changes` (the organisation approves its own).
async fn propose(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    JsonBody(body): JsonBody<Propose>,
) -> Result<Json<Value>, ApiError> {
    let title = body.title.clone();
    console.record(&session, "propose", &title, "asked", None)?;
    let outcome = blocking(&console, move |console| {
        let height = console.node.status()?["height"].as_u64().unwrap_or(0);
        let action = GovernanceAction::Propose {
            title: body.title,
            description: body.description,
            expires_at_height: height + body.expires_in.max(1),
            changes: body.changes,
        };
        console.govern(action)
    })
    .await;
    finish(&console, &session, "propose", &title, outcome)
}

/// Approves, rejects or withdraws proposal `id`.
async fn vote(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((id, vote)) = path.map_err(|rejection| bad_request(rejection.body_text()))?;
    let proposal =
        Hash(parse_hex_array(&id, "the proposal id").map_err(|error| client_error(&error))?);
    let action = match vote.as_str() {
        "approve" => GovernanceAction::Approve { proposal },
        "reject" => GovernanceAction::Reject { proposal },
        "withdraw" => GovernanceAction::Withdraw { proposal },
        _ => return Err(bad_request("the vote is approve, reject or withdraw")),
    };
    console.record(&session, &vote, &id, "asked", None)?;
    let outcome = blocking(&console, move |console| console.govern(action)).await;
    finish(&console, &session, &vote, &id, outcome)
}

/// Records how a signed action ended, and answers with its transaction and receipt.
fn finish(
    console: &Console,
    session: &Session,
    action: &str,
    subject: &str,
    outcome: Result<(Hash, Value), ApiError>,
) -> Result<Json<Value>, ApiError> {
    match outcome {
        Ok((hash, answer)) => {
            let receipt = &answer["receipt"];
            let result = match receipt["status"].as_str() {
                Some("success") => "ok".to_owned(),
                _ => format!("{}: {}", receipt["status"], receipt["reason"]),
            };
            console.record(session, action, subject, &result, Some(hash))?;
            Ok(Json(json!({ "transaction": hash, "receipt": receipt, "outcome": result })))
        }
        Err(error) => {
            console.record(
                session,
                action,
                subject,
                &format!("failed: {}", error.message()),
                None,
            )?;
            Err(error)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    format: Option<String>,
}

/// The audit log, as JSON (`{"entries": [...]}`) or CSV (`?format=csv`).
async fn audit(
    State(console): State<Arc<Console>>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| bad_request(rejection.body_text()))?;
    let entries = console.audit.entries().map_err(ApiError::internal)?;
    Ok(match query.format.as_deref() {
        None | Some("json") => Json(json!({ "entries": entries })).into_response(),
        Some("csv") => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"pactum-audit.csv\""),
            ],
            to_csv(&entries),
        )
            .into_response(),
        Some(other) => {
            return Err(bad_request(format!("format is json or csv, not {other:?}")));
        }
    })
}

/// The identities the console acts as: the admin key and every client identity it
/// keeps, each as the ledger knows it.
async fn identities(State(console): State<Arc<Console>>) -> Result<Json<Value>, ApiError> {
    blocking(&console, |console| {
        let mut rows =
            vec![(crate::identities::ADMIN.to_owned(), console.keypair.public_key(), None)];
        for identity in console.identities.list() {
            rows.push((identity.name, identity.info.public_key, Some(identity.info.not_after)));
        }
        let mut out = Vec::new();
        for (name, key, not_after) in rows {
            let account =
                console.node.get(&format!("/v1/accounts/{key}"))?.into_success("an account")?;
            out.push(json!({
                "name": name,
                "public_key": key,
                "not_after": not_after,
                "enrolled": account["enrolled"],
                "organisation": account["organisation"],
                "role": account["role"],
            }));
        }
        Ok(json!({ "identities": out }))
    })
    .await
    .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIdentity {
    name: String,
    certificate_pem: String,
    private_key_pem: String,
}

/// Keeps a client certificate and its key as an identity, and enrols it on the ledger.
async fn add_identity(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    JsonBody(body): JsonBody<NewIdentity>,
) -> Result<Json<Value>, ApiError> {
    let identity = crate::identities::Identities::check(
        &body.name,
        &body.certificate_pem,
        &body.private_key_pem,
    )
    .map_err(bad_request)?;
    console.record(&session, "enrol", &body.name, "asked", None)?;
    console
        .identities
        .save(&identity, &body.certificate_pem, &body.private_key_pem)
        .map_err(bad_request)?;
    let outcome = blocking(&console, move |console| {
        let payload = Payload::EnrolIdentity { certificate_der: identity.certificate_der.clone() };
        console.transact(&identity.keypair, payload, GOVERNANCE_GAS)
    })
    .await;
    finish(&console, &session, "enrol", &body.name, outcome)
}

/// Contract arguments written `type:value` (`pactum contract call`'s syntax).
fn arguments(arguments: &[String]) -> Result<Vec<u8>, ApiError> {
    pactum_client::encode_arguments(arguments).map_err(|error| client_error(&error))
}

/// `answer` with its return data decoded as `returns`, when asked.
fn decoded(mut answer: Value, return_data: &Value, returns: Option<&str>) -> Value {
    if let Some(kind) = returns.filter(|kind| !kind.is_empty()) {
        let bytes = hex::decode(return_data.as_str().unwrap_or("")).unwrap_or_default();
        answer["returned"] = match pactum_client::decode_return(kind, &bytes) {
            Ok(value) => json!(value),
            Err(error) => json!(format!("cannot decode: {error}")),
        };
    }
    answer
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deploy {
    identity: String,
    /// The WebAssembly module, hex.
    code: String,
    #[serde(default)]
    init_arguments: Vec<String>,
    /// The init arguments as JSON values, encoded by the interface the module declares.
    init_values: Option<Vec<Value>>,
    gas_limit: Option<u64>,
}

/// A call's input: `values` encoded by the contract's declared interface, or else
/// `type:value` arguments.
fn call_input(
    interface: Option<&Interface>,
    method: &str,
    values: Option<&[Value]>,
    arguments: &[String],
) -> Result<Vec<u8>, ApiError> {
    match (values, interface) {
        (None, _) => self::arguments(arguments),
        (Some(_), None) => Err(bad_request(
            "the contract declares no interface: give `type:value` arguments instead",
        )),
        (Some(values), Some(interface)) => {
            pactum_client::interface::encode_call(interface, method, values)
                .map_err(|error| bad_request(error.to_string()))
        }
    }
}

/// Deploys a contract as `identity`; the answer names its address.
async fn deploy(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    JsonBody(body): JsonBody<Deploy>,
) -> Result<Json<Value>, ApiError> {
    let code = hex::decode(body.code.trim()).map_err(|_| bad_request("the code is not hex"))?;
    if !code.starts_with(b"\0asm") {
        return Err(bad_request("the code is not a WebAssembly module"));
    }
    let interface = pactum_types::interface::of_module(&code)
        .map_err(|error| bad_request(format!("the module's interface section: {error}")))?;
    let init_input = match (&body.init_values, &interface) {
        (Some(values), Some(interface)) => {
            pactum_client::interface::encode_arguments(interface, "init", &interface.init, values)
                .map_err(|error| bad_request(error.to_string()))?
        }
        _ => call_input(None, "", body.init_values.as_deref(), &body.init_arguments)?,
    };
    let subject = format!("{} bytes of code as {}", code.len(), body.identity);
    console.record(&session, "deploy", &subject, "asked", None)?;
    let gas_limit = body.gas_limit.unwrap_or(CONTRACT_GAS_DEFAULT);
    let identity = body.identity.clone();
    let outcome = blocking(&console, move |console| {
        let keypair = console.actor(&identity)?;
        let nonce = console.node.next_nonce(&keypair.public_key())?;
        let address = pactum_client::deployed_address(&keypair.public_key(), nonce);
        let (hash, mut answer) =
            console.transact(&keypair, Payload::DeployContract { code, init_input }, gas_limit)?;
        answer["address"] = json!(address);
        Ok((hash, answer))
    })
    .await;
    let address = outcome.as_ref().ok().map(|(_, answer)| answer["address"].clone());
    let mut reply = finish(&console, &session, "deploy", &subject, outcome)?;
    reply.0["address"] = address.unwrap_or(Value::Null);
    Ok(reply)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Call {
    /// Who signs (a call) or is the caller (a query): `admin` or a kept identity. A query
    /// without one runs as the zero address.
    identity: Option<String>,
    contract: String,
    method: String,
    #[serde(default)]
    arguments: Vec<String>,
    /// The arguments as JSON values, encoded by the contract's declared interface.
    values: Option<Vec<Value>>,
    /// How to show the return data: a type name of `pactum contract`, or none (then it is
    /// decoded by the declared interface, when the contract has one).
    returns: Option<String>,
    gas_limit: Option<u64>,
}

/// The declared interface of the contract at `contract`, as its validator reads it.
async fn interface_of(
    console: &Arc<Console>,
    contract: &str,
) -> Result<Option<Interface>, ApiError> {
    let contract = contract.trim().to_owned();
    blocking(console, move |console| pactum_client::interface::fetch(&console.node, &contract))
        .await
}

/// `answer` with its return data decoded: as the asked `returns` type, or else by the
/// declared interface into `decoded`.
fn with_return(
    answer: Value,
    interface: Option<&Interface>,
    method: &str,
    returns: Option<&str>,
) -> Value {
    let return_data = if answer["receipt"].is_object() {
        answer["receipt"]["return_data"].clone()
    } else {
        answer["return_data"].clone()
    };
    let mut answer = decoded(answer, &return_data, returns);
    let succeeded = answer["status"] == "success" || answer["receipt"]["status"] == "success";
    if let (Some(interface), true, None) =
        (interface, succeeded, returns.filter(|kind| !kind.is_empty()))
    {
        let bytes = hex::decode(return_data.as_str().unwrap_or("")).unwrap_or_default();
        answer["decoded"] = match pactum_client::interface::decode_return(interface, method, &bytes)
        {
            Ok(value) => value,
            Err(error) => json!({"error": error.to_string()}),
        };
    }
    answer
}

fn parse_contract(text: &str) -> Result<pactum_types::Address, ApiError> {
    Ok(pactum_types::Address(
        parse_hex_array(text.trim(), "the contract address")
            .map_err(|error| client_error(&error))?,
    ))
}

/// Calls a contract method in a signed transaction and waits for its receipt.
async fn call(
    State(console): State<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    JsonBody(body): JsonBody<Call>,
) -> Result<Json<Value>, ApiError> {
    let contract = parse_contract(&body.contract)?;
    let interface = interface_of(&console, &body.contract).await?;
    let input =
        call_input(interface.as_ref(), &body.method, body.values.as_deref(), &body.arguments)?;
    let identity = body.identity.clone().unwrap_or_else(|| crate::identities::ADMIN.to_owned());
    let subject = format!("{}.{} as {identity}", short_hex(&body.contract), body.method);
    console.record(&session, "call", &subject, "asked", None)?;
    let method = body.method.clone();
    let gas_limit = body.gas_limit.unwrap_or(CONTRACT_GAS_DEFAULT);
    let outcome = blocking(&console, move |console| {
        let keypair = console.actor(&identity)?;
        console.transact(&keypair, Payload::CallContract { contract, method, input }, gas_limit)
    })
    .await;
    let mut reply = finish(&console, &session, "call", &subject, outcome)?;
    reply.0 = with_return(reply.0, interface.as_ref(), &body.method, body.returns.as_deref());
    Ok(reply)
}

/// Runs a read-only call against the committed state (the node's `/v1/query`), signed
/// as the identity when one is named.
async fn query(
    State(console): State<Arc<Console>>,
    JsonBody(body): JsonBody<Call>,
) -> Result<Json<Value>, ApiError> {
    let contract = parse_contract(&body.contract)?;
    let gas_limit = body.gas_limit.unwrap_or(10_000_000);
    let interface = interface_of(&console, &body.contract).await?;
    let input =
        call_input(interface.as_ref(), &body.method, body.values.as_deref(), &body.arguments)?;
    let answer = blocking(&console, move |console| {
        let caller = body.identity.as_deref().map(|name| console.actor(name)).transpose()?;
        let chain = console.node.chain_id()?;
        let request = pactum_client::query_body(
            Some(&chain),
            contract,
            &body.method,
            &input,
            gas_limit,
            caller.as_deref(),
            pactum_clock::unix_millis(),
        );
        let answer = console.node.post_json("/v1/query", &request)?.into_success("the query")?;
        Ok(with_return(answer, interface.as_ref(), &body.method, body.returns.as_deref()))
    })
    .await?;
    Ok(Json(answer))
}

fn short_hex(text: &str) -> String {
    text.chars().take(12).collect()
}

async fn openapi() -> Response {
    asset("application/json", OPENAPI_DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console never parses a string as HTML: every ledger string reaches the page as
    /// text (ADR 0023). A sink that parses markup in the script fails this test.
    #[test]
    fn the_console_script_uses_no_html_parsing_sink() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
        assert!(!INDEX_HTML.contains("<script>"), "no inline script: the CSP forbids it");
        assert!(!INDEX_HTML.contains("style="), "no inline style: the CSP forbids it");
    }

    #[test]
    fn the_openapi_document_names_every_route() {
        let document: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        for path in [
            "/admin/api/login",
            "/admin/api/logout",
            "/admin/api/session",
            "/admin/api/node/{path}",
            "/admin/api/overview",
            "/admin/api/wizard",
            "/admin/api/proposals",
            "/admin/api/proposals/{id}/{vote}",
            "/admin/api/audit",
            "/admin/api/identities",
            "/admin/api/contracts/call",
            "/admin/api/contracts/query",
            "/admin/api/contracts/deploy",
        ] {
            assert!(document["paths"][path].is_object(), "{path} is not in openapi.json");
        }
    }

    #[test]
    fn a_changes_wizard_reads_the_cli_json_form() {
        let wizard: Wizard = serde_json::from_value(json!({
            "kind": "changes",
            "changes": [{ "change": "set_policy", "class": "membership", "policy": { "rule": "all" } }],
        }))
        .unwrap();
        assert!(matches!(wizard, Wizard::Changes { changes } if changes.len() == 1));
        let error = serde_json::from_value::<Wizard>(json!({ "kind": "onboard" })).unwrap_err();
        assert!(error.to_string().contains("ca_certificate_pem"), "{error}");
    }
}
