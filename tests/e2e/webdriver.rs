//! A minimal W3C WebDriver client: the test starts its own `chromedriver` on a free loopback
//! port and drives a headless Chromium through it over plain HTTP/1.1 (one request per
//! connection, bounded responses, timeouts on every read and write).
//!
//! Covers what the browser tests need: a session, navigation, finding elements by CSS, typing,
//! clicking, attributes and text, running a script, screenshots. The session is deleted and
//! chromedriver killed when the [`WebDriver`] is dropped.

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Largest response read from chromedriver (a full-window screenshot is well below this).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Page loads and scripts are bounded by the session's own timeouts (set below); this bounds
/// each HTTP read and write on top of them.
const IO_TIMEOUT: Duration = Duration::from_secs(90);
const PAGE_LOAD_TIMEOUT_MS: u64 = 30_000;
const SCRIPT_TIMEOUT_MS: u64 = 15_000;

const PREREQUISITES: &str = "install Debian's `chromium` and `chromium-driver` packages \
     (scripts/prerequisites installs them, as root, for scripts/test)";

/// A headless Chromium session behind a chromedriver process this client owns.
pub(crate) struct WebDriver {
    addr: SocketAddr,
    session: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for WebDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebDriver")
            .field("addr", &self.addr)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub(crate) struct Element<'a> {
    driver: &'a WebDriver,
    id: String,
}

/// An error answered by chromedriver (`{"value": {"error", "message"}}`).
#[derive(Debug)]
pub(crate) struct WebDriverError {
    pub(crate) status: u16,
    pub(crate) error: String,
    pub(crate) message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The first line of chromedriver's message; the rest is a long session-info dump.
        let first = self.message.lines().next().unwrap_or_default();
        write!(f, "WebDriver error {} ({}): {first}", self.error, self.status)
    }
}

impl std::error::Error for WebDriverError {}

/// `name` on PATH, else the first of `fallbacks` that exists.
fn locate(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name));
    on_path.chain(fallbacks.iter().map(PathBuf::from)).find(|p| p.is_file())
}

/// Polls chromedriver's `GET /status` until it reports ready, exits, or `limit` passes.
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn wait_ready(child: &mut Child, addr: SocketAddr, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("chromedriver exited with {status}");
        }
        if let Ok((200, v)) = http(addr, "GET", "/status", None)
            && v["value"]["ready"] == json!(true)
        {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("chromedriver on {addr} was not ready within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A loopback port free at the time of asking.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

impl WebDriver {
    /// Starts chromedriver and a new headless Chromium session. Fails, naming
    /// scripts/prerequisites, when either binary is missing.
    pub(crate) fn start() -> Result<WebDriver> {
        let driver = std::env::var_os("CBDC_CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| locate("chromedriver", &["/usr/bin/chromedriver"]))
            .ok_or_else(|| anyhow!("chromedriver is not installed: {PREREQUISITES}"))?;
        let browser = std::env::var_os("CBDC_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| locate("chromium", &["/usr/bin/chromium"]))
            .ok_or_else(|| anyhow!("chromium is not installed: {PREREQUISITES}"))?;

        let dir = tempfile::tempdir()?;
        let log = dir.path().join("chromedriver.log");
        let mut last_error = anyhow!("chromedriver did not start");
        // The free port may be taken between asking and binding: a few attempts.
        for _ in 0..3 {
            let port = free_port()?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let out = std::fs::File::create(&log)?;
            let mut child = Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .with_context(|| format!("starting {} ({PREREQUISITES})", driver.display()))?;
            match wait_ready(&mut child, addr, Duration::from_secs(20)) {
                Ok(()) => {
                    let mut wd = WebDriver { addr, session: String::new(), child, log, _dir: dir };
                    wd.new_session(&browser)?;
                    return Ok(wd);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let tail = tail(&std::fs::read_to_string(&log).unwrap_or_default(), 30);
                    last_error = e.context(format!(
                        "starting {} on {addr}; its output:\n{tail}",
                        driver.display()
                    ));
                }
            }
        }
        Err(last_error)
    }

    fn new_session(&mut self, browser: &Path) -> Result<()> {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    // The network's TLS certificates come from its own CA.
                    "acceptInsecureCerts": true,
                    "goog:chromeOptions": {
                        "binary": browser.to_string_lossy(),
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1400,1000",
                        ],
                    },
                },
            },
        });
        let v = self
            .command("POST", "/session", Some(&capabilities))
            .with_context(|| format!("new session; chromedriver log:\n{}", self.log_tail()))?;
        self.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("new session answered without a sessionId: {v}"))?
            .to_string();
        self.session_command(
            "POST",
            "/timeouts",
            Some(&json!({
                "implicit": 0,
                "pageLoad": PAGE_LOAD_TIMEOUT_MS,
                "script": SCRIPT_TIMEOUT_MS,
            })),
        )?;
        Ok(())
    }

    /// The last lines of chromedriver's output, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 30)
    }

    /// Navigates to `url` and waits for the page load.
    pub(crate) fn goto(&self, url: &str) -> Result<()> {
        self.session_command("POST", "/url", Some(&json!({ "url": url })))
            .with_context(|| format!("navigating to {url}"))?;
        Ok(())
    }

    pub(crate) fn title(&self) -> Result<String> {
        let v = self.session_command("GET", "/title", None)?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching the CSS `selector`; an error when there is none.
    pub(crate) fn find(&self, selector: &str) -> Result<Element<'_>> {
        self.try_find(selector)?.ok_or_else(|| anyhow!("no element matches `{selector}`"))
    }

    /// The first element matching the CSS `selector`, if any.
    pub(crate) fn try_find(&self, selector: &str) -> Result<Option<Element<'_>>> {
        let body = json!({ "using": "css selector", "value": selector });
        match self.session_command("POST", "/element", Some(&body)) {
            Ok(v) => Ok(Some(self.element(&v)?)),
            Err(e) if is_error(&e, "no such element") => Ok(None),
            Err(e) => Err(e.context(format!("finding `{selector}`"))),
        }
    }

    /// Every element matching the CSS `selector`, in document order.
    pub(crate) fn find_all(&self, selector: &str) -> Result<Vec<Element<'_>>> {
        let body = json!({ "using": "css selector", "value": selector });
        let v = self
            .session_command("POST", "/elements", Some(&body))
            .with_context(|| format!("finding all `{selector}`"))?;
        v.as_array()
            .ok_or_else(|| anyhow!("find elements answered {v}"))?
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    fn element(&self, v: &Value) -> Result<Element<'_>> {
        let id = v[ELEMENT_KEY].as_str().ok_or_else(|| anyhow!("not an element reference: {v}"))?;
        Ok(Element { driver: self, id: id.to_string() })
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its value.
    pub(crate) fn execute(&self, script: &str, args: &[Value]) -> Result<Value> {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
        .context("executing a script")
    }

    /// The current window as PNG bytes.
    pub(crate) fn screenshot_png(&self) -> Result<Vec<u8>> {
        let v = self.session_command("GET", "/screenshot", None)?;
        let b64 = v.as_str().ok_or_else(|| anyhow!("screenshot answered a non-string"))?;
        base64::engine::general_purpose::STANDARD.decode(b64).context("screenshot is not base64")
    }

    /// Saves a screenshot of the current window to `path` (creating its directory).
    pub(crate) fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.screenshot_png()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Polls `probe` every 100 ms until it answers `Some`, for at most `limit`; the error names
    /// `what` and the probe's last error, if any.
    #[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on a real browser")]
    pub(crate) fn wait_for<'a, T>(
        &'a self,
        limit: Duration,
        what: &str,
        mut probe: impl FnMut(&'a WebDriver) -> Result<Option<T>>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            let last = match probe(self) {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => None,
                Err(e) => Some(e),
            };
            if start.elapsed() > limit {
                let why = last.map(|e| format!(" (last error: {e:#})")).unwrap_or_default();
                bail!("timed out after {limit:?} waiting for {what}{why}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A command of the current session: `/session/{id}{path}`.
    fn session_command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        if self.session.is_empty() {
            bail!("no WebDriver session");
        }
        self.command(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One WebDriver command; its `value`, or its error as a [`WebDriverError`].
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, v) = http(self.addr, method, path, body)?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status != 200 {
            let error = value["error"].as_str().unwrap_or("unknown error").to_string();
            let message = value["message"].as_str().unwrap_or_default().to_string();
            return Err(WebDriverError { status, error, message }.into());
        }
        Ok(value)
    }
}

/// One HTTP/1.1 request to chromedriver: status and JSON body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to chromedriver at {}", addr))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let payload = body.map(Value::to_string);
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
        addr
    );
    match &payload {
        Some(p) => request.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{p}",
            p.len()
        )),
        None if method == "POST" => request.push_str("Content-Length: 0\r\n\r\n"),
        None => request.push_str("\r\n"),
    }
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending {method} {path} to chromedriver"))?;
    // chromedriver answers `Connection: close` but keeps the socket open: read by the framing.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let (status, body) = loop {
        let n = stream
            .read(&mut buf)
            .with_context(|| format!("reading chromedriver's answer to {method} {path}"))?;
        raw.extend_from_slice(&buf[..n]);
        if raw.len() as u64 > MAX_RESPONSE_BYTES {
            bail!("chromedriver's answer to {method} {path} exceeds {MAX_RESPONSE_BYTES} bytes");
        }
        if let Some(done) = parse_response(&raw, n == 0)
            .with_context(|| format!("chromedriver's answer to {method} {path}"))?
        {
            break done;
        }
    };
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "chromedriver answered {method} {path} with {status} and non-JSON: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            )
        })?
    };
    Ok((status, v))
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Best effort: closes the browser cleanly; chromedriver is killed regardless.
            let _ = self.command("DELETE", &format!("/session/{}", self.session), None);
            self.session.clear();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Element<'_> {
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.driver.session_command(method, &format!("/element/{}{path}", self.id), body)
    }

    /// Types `text` into the element.
    pub(crate) fn send_keys(&self, text: &str) -> Result<()> {
        self.command("POST", "/value", Some(&json!({ "text": text })))?;
        Ok(())
    }

    /// Empties an input element.
    pub(crate) fn clear(&self) -> Result<()> {
        self.command("POST", "/clear", Some(&json!({})))?;
        Ok(())
    }

    pub(crate) fn click(&self) -> Result<()> {
        self.command("POST", "/click", Some(&json!({})))?;
        Ok(())
    }

    /// The attribute's value; `None` when the element has no such attribute.
    pub(crate) fn attribute(&self, name: &str) -> Result<Option<String>> {
        let v = self.command("GET", &format!("/attribute/{name}"), None)?;
        Ok(v.as_str().map(str::to_string))
    }

    /// The element's rendered text (empty when hidden).
    pub(crate) fn text(&self) -> Result<String> {
        let v = self.command("GET", "/text", None)?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub(crate) fn is_displayed(&self) -> Result<bool> {
        Ok(self.command("GET", "/displayed", None)?.as_bool().unwrap_or(false))
    }
}

/// Whether `e` is a WebDriver error with the code `code` (e.g. `no such element`).
pub(crate) fn is_error(e: &anyhow::Error, code: &str) -> bool {
    e.downcast_ref::<WebDriverError>().is_some_and(|w| w.error == code)
}

/// Splits an HTTP/1.1 response into status and body (framed by Content-Length, chunked, or
/// to the end of the stream); `None` while incomplete and the stream is not at its end.
fn parse_response(raw: &[u8], eof: bool) -> Result<Option<(u16, Vec<u8>)>> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        ensure!(
            !eof,
            "the connection closed after {} bytes, before the end of the headers",
            raw.len()
        );
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let rest = &raw[end + 4..];
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(n) = header("content-length") {
        let n: usize = n.parse().with_context(|| format!("bad Content-Length {n}"))?;
        (rest.len() >= n).then(|| rest[..n].to_vec())
    } else {
        eof.then(|| rest.to_vec())
    };
    match body {
        Some(body) => Ok(Some((status, body))),
        None if eof => bail!("the connection closed in the middle of the body"),
        None => Ok(None),
    }
}

/// The body of a chunked transfer; `None` until the last chunk has arrived.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
