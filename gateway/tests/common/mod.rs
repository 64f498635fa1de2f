//! The end-to-end harness: a real gateway (in-process, own threads) on a fresh SQLite
//! database (or a fresh PostgreSQL schema, see [`Setup`]), in front of a scriptable fake
//! Anthropic upstream on 127.0.0.1:0.

#![allow(dead_code)]

use ccp_core::config::Config;
use ccp_core::keys::AccessKey;
use ccp_core::store::{NewAccessKey, NewUser, Store, StoreOptions};
use ccp_gateway::RunningGateway;
use ccp_testkit::{FakeUpstream, RecordedRequest, Reply};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
pub struct Harness {
    pub gateway: Option<RunningGateway>,
    /// Where the gateway listens: the in-process one, or the binary started last.
    addr: std::net::SocketAddr,
    pub upstream: FakeUpstream,
    /// The fake Bedrock runtime, when the harness key has a Bedrock key.
    pub bedrock: Option<FakeUpstream>,
    pub store: Store,
    pub key: AccessKey,
    pub key_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub config: Config,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    // Last: the schema is dropped once the gateway and the store are gone.
    _pg: Option<ccp_testkit::stores::PgSchema>,
}

/// The pepper of a PostgreSQL harness (SQLite ones generate theirs in the data dir).
pub const PG_PEPPER: &str = "harness-pepper-harness-pepper-harness-pepper";

/// Which database the harness's gateway runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    #[default]
    Sqlite,
    /// A fresh schema in the test PostgreSQL (`CCP_TEST_DATABASE_URL`).
    Postgres,
}

/// How a harness starts beyond its upstreams and settings.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub engine: Engine,
    /// The gateway's clock (request timestamps, the budget month); the system's by default.
    pub clock: Option<ccp_core::clock::WallClock>,
}

async fn issue_key(
    store: &Store,
    config: &Config,
    user_id: uuid::Uuid,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> (AccessKey, uuid::Uuid) {
    let key = AccessKey::generate();
    let pepper = config.load_pepper().expect("pepper");
    let record = store
        .insert_access_key(NewAccessKey {
            user_id,
            name: None,
            display_prefix: key.masked(),
            digest: pepper.digest(&key),
            expires_at,
        })
        .await
        .expect("key");
    (key, record.id)
}

/// The harness's Bedrock API key: a canary that must only ever reach the fake Bedrock.
pub const BEDROCK_KEY: &str = "CANARYBRbedrock0key0value0ZZ9";

/// Stores `value` as the Bedrock key of `access_key_id`, as `ccp-admin bedrock-key set` does.
pub async fn set_bedrock_key(
    store: &Store,
    config: &Config,
    access_key_id: uuid::Uuid,
    value: &str,
) {
    use ccp_core::crypto::WrapContext;
    let wrapper = ccp_core::crypto::wrapper_for(&config.key_wrapper)
        .await
        .expect("wrapper");
    let ciphertext = wrapper
        .wrap(&value.into(), &WrapContext::new(access_key_id))
        .await
        .expect("wrap");
    store
        .set_bedrock_key(ccp_core::store::NewBedrockKey {
            access_key_id,
            ciphertext,
            wrapper: wrapper.kind().as_str(),
            region: "us-east-1".into(),
            last4: value[value.len() - 4..].to_owned(),
        })
        .await
        .expect("bedrock key");
}

/// A `ccp-gateway` process. It listens on port 0 and the test reads the ports it got from its
/// log: a port chosen by the test and bound later by the child could be taken in between by
/// any other test's listener (this happened in CI).
pub struct GatewayProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// `host:port` of its metrics listener, when it was started with one.
    pub metrics: Option<String>,
    /// Its stderr.
    pub log: std::path::PathBuf,
}

impl GatewayProcess {
    /// Starts `command` with the gateway (and, with `metrics`, the metrics listener) on port 0
    /// and stderr to `log`; waits until it says where it listens and answers `/readyz`.
    pub async fn start(
        mut command: std::process::Command,
        log: std::path::PathBuf,
        metrics: bool,
        client: &reqwest::Client,
    ) -> Self {
        let stderr = std::fs::File::create(&log).expect("gateway log");
        let mut child = command
            .env("CCP_GATEWAY_ADDR", "127.0.0.1:0")
            .env(
                "CCP_METRICS_ADDR",
                if metrics { "127.0.0.1:0" } else { "off" },
            )
            .stderr(stderr)
            .spawn()
            .expect("start ccp-gateway");
        let mut reported = (None, None);
        eventually("the gateway binary reports its addresses", || {
            if let Ok(Some(status)) = child.try_wait() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("ccp-gateway exited ({status}) before listening:\n{said}");
            }
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            reported = (
                listening_addr(&said, "gateway listening"),
                listening_addr(&said, "metrics listening"),
            );
            let done = reported.0.is_some() && (!metrics || reported.1.is_some());
            async move { done }
        })
        .await;
        let addr = reported.0.unwrap().parse().expect("gateway address");
        let ready = format!("http://{addr}/readyz");
        eventually("the gateway binary is ready", || async {
            matches!(client.get(&ready).send().await, Ok(r) if r.status() == 200)
        })
        .await;
        Self {
            child,
            addr,
            metrics: reported.1,
            log,
        }
    }
}

/// The `addr` of the first log line (text or JSON) that says `message`.
fn listening_addr(log: &str, message: &str) -> Option<String> {
    log.lines().find_map(|line| {
        if line.starts_with('{') {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            if event["message"] != message {
                return None;
            }
            event["addr"].as_str().map(str::to_owned)
        } else {
            let plain = without_colours(line);
            let (_, rest) = plain.split_once(message)?;
            let addr = rest.trim_start().strip_prefix("addr=")?;
            Some(addr.split_whitespace().next()?.to_owned())
        }
    })
}

/// `line` without its ANSI colour sequences (`ESC [ … m`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// A local port that refuses connections for as long as this value lives: the socket is
/// bound but never listens, so connecting to it is refused and no other test can take it.
pub struct ClosedPort {
    _socket: socket2::Socket,
    port: u16,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind");
        let port = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet")
            .port();
        Self {
            _socket: socket,
            port,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Harness {
    pub async fn start(
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(responder, &[]).await
    }

    /// `settings` are extra `(setting, value)` pairs, e.g. `("key_cache_ttl_secs", "1")`.
    pub async fn start_with(
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::build(
            FakeUpstream::start(responder).await,
            None,
            settings,
            Setup::default(),
        )
        .await
    }

    /// A harness whose key has a Bedrock key (region us-east-1, value [`BEDROCK_KEY`]) and a
    /// fake Bedrock runtime behind `CCP_BEDROCK_ENDPOINT`.
    pub async fn start_failover(
        plan: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        bedrock: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_failover_with(plan, bedrock, settings, Setup::default()).await
    }

    /// [`Harness::start_failover`] on another engine or with another clock.
    pub async fn start_failover_with(
        plan: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        bedrock: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        settings: &[(&str, &str)],
        setup: Setup,
    ) -> Self {
        let plan = FakeUpstream::start(plan).await;
        let bedrock = FakeUpstream::start(bedrock).await;
        Self::build(plan, Some(bedrock), settings, setup).await
    }

    async fn build(
        upstream: FakeUpstream,
        bedrock: Option<FakeUpstream>,
        settings: &[(&str, &str)],
        setup: Setup,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().display().to_string();
        // PostgreSQL needs what SQLite generates in the data dir: a pepper and a wrapping key.
        let pg = match setup.engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(ccp_testkit::stores::pg_schema().await),
        };
        let wrap_key = dir.path().join("wrap.key");
        let wrap_key_file = wrap_key.display().to_string();
        let pepper = PG_PEPPER.to_owned();
        let plan = upstream.url();
        let bedrock_url = bedrock.as_ref().map(FakeUpstream::url);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("data_dir", &data_dir),
            // The gateway binds port 0 and reports the port it got.
            ("gateway_addr", "127.0.0.1:0"),
            ("plan_base_url", &plan),
            ("threads", "2"),
            ("shutdown_grace_secs", "5"),
            // Tests run many gateways at once; a metrics test sets its own port.
            ("metrics_addr", "off"),
        ];
        if let Some(url) = &bedrock_url {
            pairs.push(("bedrock_endpoint", url));
        }
        if let Some(pg) = &pg {
            ccp_core::crypto::LocalWrapper::load_or_create(&wrap_key, true).expect("wrapping key");
            pairs.extend([
                ("database_url", pg.url.as_str()),
                ("pepper", pepper.as_str()),
                ("key_wrapper", "local"),
                ("wrap_key_file", wrap_key_file.as_str()),
                (
                    "session_secret",
                    "harness-session-secret-harness-session-secret",
                ),
            ]);
        }
        // Later pairs win, so a test can point Plan elsewhere (e.g. a closed port).
        pairs.extend_from_slice(settings);
        let config = Config::from_pairs(&pairs).expect("config");

        // Issue a key the way the CLI does, in the database the gateway will open.
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let store = Store::connect(config.database_url.expose(), &StoreOptions::default())
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        let user = store
            .create_user(NewUser {
                name: "E2E".into(),
                email: "e2e@example.com".into(),
            })
            .await
            .expect("user");
        let (key, key_id) = issue_key(&store, &config, user.id, None).await;
        if bedrock.is_some() {
            set_bedrock_key(&store, &config, key_id, BEDROCK_KEY).await;
        }

        let gateway_config = config.clone();
        let clock = setup.clock.unwrap_or_default();
        let gateway = tokio::task::spawn_blocking(move || {
            RunningGateway::start_with_clock(gateway_config, clock)
        })
        .await
        .expect("join")
        .expect("gateway starts");
        Self {
            addr: gateway.addr,
            gateway: Some(gateway),
            upstream,
            bedrock,
            store,
            key,
            key_id,
            user_id: user.id,
            config,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            _dir: dir,
            _pg: pg,
        }
    }

    /// Issues another key for the harness user, as the CLI would.
    pub async fn issue_key(
        &self,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> (AccessKey, uuid::Uuid) {
        issue_key(&self.store, &self.config, self.user_id, expires_at).await
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The in-process gateway's scrape address (start it with `("metrics_addr", "127.0.0.1:0")`).
    pub fn metrics_addr(&self) -> String {
        self.gateway
            .as_ref()
            .and_then(|g| g.metrics_addr)
            .expect("a running gateway serving metrics")
            .to_string()
    }

    /// `http://127.0.0.1:PORT/ak/<key>`: what ANTHROPIC_BASE_URL would be.
    pub fn base_url(&self) -> String {
        format!("http://{}/ak/{}", self.addr(), self.key.expose())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    pub fn bedrock(&self) -> &FakeUpstream {
        self.bedrock.as_ref().expect("a failover harness")
    }

    /// Runs the real `ccp-gateway` binary on this harness's database and fakes (stop the
    /// in-process gateway first), with `env` added (`("CCP_METRICS_ADDR", "on")` asks for a
    /// metrics listener), and waits until it is ready. Its stderr goes to
    /// `<data_dir>/gateway-binary.log`; the harness's address becomes the binary's.
    pub async fn spawn_binary(&mut self, env: &[(&str, &str)]) -> GatewayProcess {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ccp-gateway"));
        command
            .env_clear()
            .env("CCP_DATA_DIR", &self.config.data_dir)
            .env("CCP_PLAN_BASE_URL", self.upstream.url())
            .env("CCP_THREADS", "2")
            .env("CCP_SHUTDOWN_GRACE_SECS", "10");
        if let Some(bedrock) = &self.bedrock {
            command.env("CCP_BEDROCK_ENDPOINT", bedrock.url());
        }
        let metrics = env.contains(&("CCP_METRICS_ADDR", "on"));
        command.envs(
            env.iter()
                .filter(|(k, _)| *k != "CCP_METRICS_ADDR")
                .copied(),
        );
        let log = self.config.data_dir.join("gateway-binary.log");
        let process = GatewayProcess::start(command, log, metrics, &self.client).await;
        self.addr = process.addr;
        process
    }

    /// Drains and stops the gateway (as on SIGTERM).
    pub async fn stop_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            tokio::task::spawn_blocking(move || gateway.shutdown())
                .await
                .expect("join")
                .expect("clean shutdown");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            // Joining blocks; do it off the async worker.
            std::thread::spawn(move || drop(gateway)).join().ok();
        }
    }
}

/// Waits until `check` answers true, polling every 20 ms; fails naming `what` after a
/// deadline (60 s) generous enough for a loaded machine. Tests wait on events this way,
/// never on a stopwatch.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The request-log row of an answer (waiting for the metering writer to write it).
pub async fn logged(h: &Harness, resp: &reqwest::Response) -> ccp_core::store::RequestLogView {
    let id = resp.headers()["x-ccp-request-id"]
        .to_str()
        .unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(row) = h.store.request_log(id).await.expect("request log") {
            return row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "request {id} never logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM to a gateway process, as ECS does at a deployment.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Reads a streaming response body to the end on its own task.
pub fn read_body_in_background(mut resp: reqwest::Response) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            got.extend_from_slice(&chunk);
        }
        got
    })
}

/// A response read off a raw socket, for cases an HTTP client would tidy up.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// Sends `request` bytes as they are and reads until the server closes or `timeout` passes.
pub async fn raw_exchange(
    addr: std::net::SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(timeout, stream.read_to_end(&mut buf)).await;
    parse_raw(&buf)
}

pub fn parse_raw(buf: &[u8]) -> RawResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    RawResponse { status, head, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap_or("0").trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

pub fn anthropic_error(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).expect("error body is JSON");
    assert_eq!(v["type"], "error", "{v}");
    (
        v["error"]["type"].as_str().expect("error.type").to_owned(),
        v["error"]["message"]
            .as_str()
            .expect("error.message")
            .to_owned(),
    )
}

/// The Prometheus text from a gateway's metrics listener.
pub async fn scrape(client: &reqwest::Client, metrics_addr: &str) -> String {
    client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}

/// `GET /v1/models` through the gateway at `addr` with `key`: 200 while the key works (the
/// request goes on to Plan), 404 once the gateway refuses the key.
pub async fn models_status(client: &reqwest::Client, addr: &str, key: &str) -> u16 {
    client
        .get(format!("http://{addr}/ak/{key}/v1/models"))
        .header("x-api-key", "k")
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

/// The admin API in-process (salvo's test client) on a harness's database, built from its
/// configuration the way `ccp-admin-server` builds it, signed in as a fresh admin.
pub struct Admin {
    service: salvo::Service,
    token: String,
}

impl Admin {
    pub async fn start(h: &Harness) -> Self {
        use salvo::test::{ResponseExt, TestClient};
        const PASSWORD: &str = "a long enough passphrase";
        h.store
            .create_admin(ccp_core::store::NewAdmin {
                username: "ops".into(),
                password_hash: ccp_core::password::hash(&ccp_core::secret::SecretString::from(
                    PASSWORD,
                ))
                .expect("hash"),
            })
            .await
            .expect("admin");
        let api = ccp_admin_server::server::build(&h.config)
            .await
            .expect("admin API");
        let service = ccp_admin_server::api::service(api, None);
        let mut res = TestClient::post("http://127.0.0.1:1/admin/auth/login")
            .json(&serde_json::json!({"username": "ops", "password": PASSWORD}))
            .send(&service)
            .await;
        let body: serde_json::Value = res.take_json().await.expect("login answer");
        let token = body["token"].as_str().expect("token").to_owned();
        Self { service, token }
    }

    /// `method path` with `body` (JSON; `Null` sends none): status and JSON answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        use salvo::test::{ResponseExt, TestClient};
        let url = format!("http://127.0.0.1:1{path}");
        let mut req = match method {
            "GET" => TestClient::get(url),
            "POST" => TestClient::post(url),
            "PATCH" => TestClient::patch(url),
            "DELETE" => TestClient::delete(url),
            other => panic!("{other}"),
        };
        if !body.is_null() {
            req = req.json(&body);
        }
        let mut res = req
            .add_header("authorization", format!("Bearer {}", self.token), true)
            .send(&self.service)
            .await;
        let status = res.status_code.map_or(0, |s| s.as_u16());
        (
            status,
            res.take_json().await.unwrap_or(serde_json::Value::Null),
        )
    }
}
