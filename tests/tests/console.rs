//! Issue 15: the admin service as a client sees it, over HTTPS against a real devnet:
//! its certificate chains to the member's CA, a login token opens one session, changes
//! need the session's CSRF token and the service's own origin, the console reads only
//! what it may, a proposal signed by the console commits with its title unchanged, and
//! every action is in the audit log.

use std::path::PathBuf;
use std::time::Duration;

use pactum_client::{NodeClient, TlsClientOptions};
use pactum_tests::devnet::{TestDevnet, wait_until};
use serde_json::{Value, json};

/// A console as its operator's browser reaches it.
struct Console {
    client: NodeClient,
    base: String,
    token_file: PathBuf,
}

/// An answer: status, headers and JSON (or text) body.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Value,
}

impl Console {
    fn of(devnet: &TestDevnet, member: usize, port: u16) -> Self {
        let directory = devnet.directory();
        let base = format!("https://127.0.0.1:{port}");
        let options = TlsClientOptions {
            ca_certificates: directory
                .join("organisations")
                .join(format!("member-{member}"))
                .join("ca-certificate.pem"),
            client_certificate: None,
        };
        Self {
            client: NodeClient::with_tls(&base, &options).expect("the member CA is usable"),
            base,
            token_file: directory
                .join("consoles")
                .join(format!("member-{member}"))
                .join("data")
                .join("login-token"),
        }
    }

    fn token(&self) -> String {
        std::fs::read_to_string(&self.token_file).unwrap().trim().to_string()
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let agent = self.client.agent();
        let result = match method {
            "GET" => {
                let mut request = agent.get(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            _ => {
                let mut request = agent.post(&url).header("Content-Type", "application/json");
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body.map(Value::to_string).unwrap_or_default())
            }
        };
        let mut response = result.expect("the console answers over verified TLS");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, headers, body }
    }
}

/// The `pactum_console` cookie a login answer set, as a `Cookie` header value.
fn session_cookie(reply: &Reply) -> String {
    let set = reply.headers["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    set.split(';').next().unwrap().to_string()
}

#[test]
fn the_console_serves_one_organisation_safely_over_https() {
    let devnet = TestDevnet::up_with_consoles(4, 27_000);
    let console = Console::of(&devnet, 1, 27_200);
    // The page, with its security headers; the API needs a session.
    let page = console.send("GET", "/", &[], None);
    assert_eq!(page.status, 200);
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let anonymous = console.send("GET", "/admin/api/session", &[], None);
    assert_eq!((anonymous.status, anonymous.body["code"].as_str()), (401, Some("login_required")));

    // A login token opens one session, and is replaced.
    let wrong = console.send("POST", "/admin/api/login", &[], Some(&json!({ "token": "00" })));
    assert_eq!(wrong.status, 401);
    let token = console.token();
    let login = console.send("POST", "/admin/api/login", &[], Some(&json!({ "token": token })));
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = session_cookie(&login);
    let again = console.send("POST", "/admin/api/login", &[], Some(&json!({ "token": token })));
    assert_eq!(again.status, 401, "a token logs in once");
    assert_ne!(console.token(), token, "the next token is written");
    let me = console.send("GET", "/admin/api/session", &[("Cookie", &cookie)], None);
    assert_eq!(me.body["organisation"], "Member 1", "{}", me.body);
    assert_eq!(me.body["role"], "admin");
    let csrf = me.body["csrf"].as_str().unwrap().to_string();

    // A change without the CSRF token, or from another origin, is refused.
    let wizard = json!({ "kind": "set_policy", "class": "contracts", "policy": { "rule": "all" } });
    let no_csrf = console.send("POST", "/admin/api/wizard", &[("Cookie", &cookie)], Some(&wizard));
    assert_eq!((no_csrf.status, no_csrf.body["code"].as_str()), (403, Some("csrf")));
    let elsewhere = console.send(
        "POST",
        "/admin/api/wizard",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf), ("Origin", "https://evil.example")],
        Some(&wizard),
    );
    assert_eq!((elsewhere.status, elsewhere.body["code"].as_str()), (403, Some("origin")));
    let headers = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let checked = console.send("POST", "/admin/api/wizard", &headers, Some(&wizard));
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert_eq!(checked.body["dry_run"]["valid"], true, "{}", checked.body);
    assert_eq!(checked.body["changes"][0]["change"], "set_policy");

    // It reads the node's REST API, and only what it may.
    let status = console.send("GET", "/admin/api/node/v1/status", &[("Cookie", &cookie)], None);
    assert_eq!(status.body["organisation"], "Member 1", "{}", status.body);
    for path in
        ["/admin/api/node/metrics", "/admin/api/node/v1/query", "/admin/api/node/v1/../metrics"]
    {
        let refused = console.send("GET", path, &[("Cookie", &cookie)], None);
        assert!(matches!(refused.status, 400 | 404), "{path}: {}", refused.status);
    }

    // A proposal signed by the console commits; its title is the operator's, byte for byte.
    let title = "<script>alert('x')</script> & \"quotes\"";
    let proposed = console.send(
        "POST",
        "/admin/api/proposals",
        &headers,
        Some(&json!({ "title": title, "changes": checked.body["changes"] })),
    );
    assert_eq!(proposed.status, 200, "{}", proposed.body);
    assert_eq!(proposed.body["outcome"], "ok", "{}", proposed.body);
    let id = proposed.body["transaction"].as_str().unwrap().to_string();
    let node = &devnet.nodes[0];
    let proposal =
        node.get(&format!("/v1/proposals/{id}")).unwrap().into_success("proposal").unwrap();
    assert_eq!(proposal["title"], title);
    assert_eq!(proposal["organisation"], "Member 1");
    // The overview counts it as not waiting for Member 1 (it voted by proposing).
    let overview = console.send("GET", "/admin/api/overview", &[("Cookie", &cookie)], None);
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert_eq!(overview.body["validators"].as_array().unwrap().len(), 4, "{}", overview.body);
    assert!(overview.body["validators"].as_array().unwrap().iter().all(|v| v["reachable"] == true));
    assert_eq!(overview.body["waiting_for_us"].as_array().unwrap().len(), 0);
    // Member 2's console sees it waiting for its vote.
    let second = Console::of(&devnet, 2, 27_201);
    let login =
        second.send("POST", "/admin/api/login", &[], Some(&json!({ "token": second.token() })));
    let second_cookie = session_cookie(&login);
    wait_until("member 2 sees the proposal", Duration::from_secs(30), || {
        let overview =
            second.send("GET", "/admin/api/overview", &[("Cookie", &second_cookie)], None);
        overview.body["waiting_for_us"][0]["id"] == id.as_str()
    });

    // Every action is in the audit log, as JSON and as CSV.
    let audit = console.send("GET", "/admin/api/audit", &[("Cookie", &cookie)], None);
    let entries = audit.body["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| (entry["action"].as_str().unwrap(), entry["outcome"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("login", "refused: wrong or used token")), "{actions:?}");
    assert!(actions.contains(&("login", "ok")), "{actions:?}");
    assert!(actions.contains(&("propose", "ok")), "{actions:?}");
    let signed =
        entries.iter().find(|entry| entry["action"] == "propose" && entry["outcome"] == "ok");
    assert_eq!(signed.unwrap()["transaction"], id.as_str());
    let csv = console.send("GET", "/admin/api/audit?format=csv", &[("Cookie", &cookie)], None);
    let text = csv.body.as_str().unwrap();
    assert!(text.starts_with("time_ms,session,action,subject,outcome,transaction\n"), "{text}");
    assert!(text.contains(&id), "{text}");

    // Contracts are called by their declared interface: JSON values in, the return value
    // decoded out; a value of the wrong type is refused before anything is signed.
    let token = devnet.contract("token").to_string();
    let query = |method: &str, values: Value| {
        let body = json!({ "contract": token, "method": method, "values": values });
        console.send("POST", "/admin/api/contracts/query", &headers, Some(&body))
    };
    let name = query("name", json!([]));
    assert_eq!(
        (name.status, &name.body["decoded"]),
        (200, &json!("Devnet Token")),
        "{}",
        name.body
    );
    let balance = query("balance", json!(["00".repeat(32)]));
    assert_eq!(balance.body["decoded"], "0", "{}", balance.body);
    let wrong = query("balance", json!([12]));
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body["message"].as_str().unwrap().contains("argument owner"), "{}", wrong.body);
    let unknown = query("burn", json!([]));
    assert!(unknown.body["message"].as_str().unwrap().contains("no method \"burn\""));

    // The node's event stream passes through: a block committed now arrives on it.
    let mut stream = console
        .client
        .agent()
        .get(format!("{}/admin/api/events?blocks=true", console.base))
        .header("Cookie", &cookie)
        .call()
        .expect("the event stream opens");
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let refused_filter = console.send(
        "GET",
        "/admin/api/events?topic=a%26blocks%3Dtrue",
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(refused_filter.status, 400);
    let second_title =
        json!({ "title": "a block for the stream", "changes": checked.body["changes"] });
    let again = console.send("POST", "/admin/api/proposals", &headers, Some(&second_title));
    assert_eq!(again.body["outcome"], "ok", "{}", again.body);
    let mut reader = std::io::BufReader::new(stream.body_mut().as_reader());
    let mut line = String::new();
    let mut seen = Vec::new();
    while std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0 {
        seen.push(line.trim_end().to_string());
        if line.starts_with("event: block") {
            break;
        }
        line.clear();
    }
    assert_eq!(seen.last().map(String::as_str), Some("event: block"), "{seen:?}");

    // Logged out, the cookie opens nothing.
    console.send("POST", "/admin/api/logout", &headers, Some(&json!({})));
    let after = console.send("GET", "/admin/api/session", &[("Cookie", &cookie)], None);
    assert_eq!(after.status, 401);
}
