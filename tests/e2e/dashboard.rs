//! The regulators' dashboard in a real browser: headless Chromium, driven over WebDriver,
//! against a running network's central bank API.
//!
//! Must show: the page is served by the central bank itself (no other origin); a wrong password
//! shows a login error; a regulator's login shows the dashboard with the supply and each bank's
//! issuance equal to `GET /v1/supply` at the same ledger height, and its charts; a new mint
//! appears on the page without a reload; a screenshot is kept; `GET /v1/dashboard` refuses
//! requests without a token (401), officers (403) and tokens of a bank's API (401).

use crate::central_bank::{Api, connect, id_of, mint};
use crate::harness::Network;
use crate::webdriver::WebDriver;
use anyhow::{Context, Result, bail, ensure};
use central_bank::client::ApiClient;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The supply figure once filled (the page's markup carries the attribute empty until then).
const FILLED: &str = r#"#supply-outstanding[data-minor]:not([data-minor=""])"#;

fn port_base(test: u16) -> u16 {
    21_000 + test * 600 + (std::process::id() % 20) as u16 * 10
}

/// One bank's row on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BankRow {
    issued_minor: u64,
    holdings_minor: u64,
    float_minor: u64,
}

/// The page's figures, read in one script run (the page cannot redraw in between).
#[derive(Debug, Clone)]
struct PageFigures {
    height: u64,
    outstanding_minor: u64,
    banks: BTreeMap<u64, BankRow>,
}

const READ_FIGURES: &str = r#"
const s = document.querySelector('#supply-outstanding');
if (!s || !s.getAttribute('data-minor')) { return null; }
return {
  minor: s.getAttribute('data-minor'),
  height: s.getAttribute('data-height'),
  banks: Array.from(document.querySelectorAll('tr.bank-row')).map(r => ({
    id: r.getAttribute('data-bank-id'),
    issued: r.getAttribute('data-issued-minor'),
    holdings: r.getAttribute('data-holdings-minor'),
    float: r.getAttribute('data-float-minor'),
  })),
};
"#;

/// An integer written as text in a `data-*` attribute.
fn minor(v: &Value, what: &str) -> Result<u64> {
    let text = v.as_str().with_context(|| format!("{what} is missing ({v})"))?;
    text.trim().parse().with_context(|| format!("{what} is not an integer: {text:?}"))
}

fn page_figures(browser: &WebDriver) -> Result<Option<PageFigures>> {
    let v = browser.execute(READ_FIGURES, &[])?;
    if v.is_null() {
        return Ok(None);
    }
    let mut banks = BTreeMap::new();
    for row in v["banks"].as_array().context("bank rows")? {
        let id = minor(&row["id"], "tr.bank-row[data-bank-id]")?;
        let bank = BankRow {
            issued_minor: minor(&row["issued"], &format!("bank {id}'s data-issued-minor"))?,
            holdings_minor: minor(&row["holdings"], &format!("bank {id}'s data-holdings-minor"))?,
            float_minor: minor(&row["float"], &format!("bank {id}'s data-float-minor"))?,
        };
        ensure!(banks.insert(id, bank).is_none(), "two rows for bank {id}");
    }
    Ok(Some(PageFigures {
        height: minor(&v["height"], "#supply-outstanding[data-height]")?,
        outstanding_minor: minor(&v["minor"], "#supply-outstanding[data-minor]")?,
        banks,
    }))
}

/// A staff member's first password, as the network's setup wrote it.
fn password(net: &Network, user: &str) -> Result<String> {
    let file = net.net_dir().join(format!("credentials/{user}.password"));
    let text = std::fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Fills the login form and submits it.
fn sign_in(browser: &WebDriver, user: &str, password: &str) -> Result<()> {
    for (field, text) in [("input#username", user), ("input#password", password)] {
        let input = browser.find(field)?;
        input.clear()?;
        input.send_keys(text)?;
    }
    browser.find("button#login")?.click()
}

/// The login error message once it shows, other than `previous`.
fn login_error(browser: &WebDriver, previous: &str) -> Result<String> {
    browser.wait_for(Duration::from_secs(10), "a message in #login-error", |b| {
        let text = b.find("#login-error")?.text()?;
        Ok((!text.trim().is_empty() && text != previous).then_some(text))
    })
}

/// `GET /v1/supply` as a regulator.
fn supply_now(client: &ApiClient, token: &str) -> Result<Value> {
    let a = client.call("GET", "/v1/supply", Some(token), None)?;
    ensure!(a.status == 200, "GET /v1/supply: {} {}", a.status, a.body);
    a.json()
}

/// The page's figures and `/v1/supply`'s figures valid at the page's height (see the caller).
fn same_height(
    browser: &WebDriver,
    api: &dyn Fn() -> Result<Value>,
) -> Result<(PageFigures, Value)> {
    let field = |v: &Value, name: &str| v[name].as_u64().with_context(|| format!("{name} in {v}"));
    let mut last = String::new();
    for _ in 0..5 {
        let before = api()?;
        let h1 = field(&before, "height")?;
        // The page's next refresh after `before`.
        let page = browser.wait_for(Duration::from_secs(10), "a page refresh", |b| {
            Ok(page_figures(b)?.filter(|p| p.height >= h1))
        })?;
        let after = api()?;
        let h2 = field(&after, "height")?;
        let unchanged = ["minted_minor", "burned_minor"]
            .iter()
            .all(|k| before[k] == after[k] && before[k].is_u64());
        if page.height <= h2 && unchanged {
            return Ok((page, after));
        }
        last = format!(
            "page at {}, API at {h1} and {h2} (minted/burned unchanged: {unchanged})",
            page.height
        );
    }
    bail!("no consistent reading of the page and the API: {last}")
}

/// Mints `amount` to `bank` through the maker-checker workflow (two officers) and waits for it
/// to commit.
fn issue(api: &Api<'_>, officers: &[String; 2], bank: u32, amount: u64) -> Result<()> {
    let id = id_of(&api.create(&officers[0], mint(bank, amount))?)?;
    for (i, token) in officers.iter().enumerate() {
        let a = api.approve(token, &id, &format!("officers/officer-{i}.key"))?;
        ensure!(a.status == 200, "approval by officer-{i}: {} {}", a.status, a.body);
    }
    api.wait_state(&officers[0], &id, &["committed"])?;
    Ok(())
}

/// Where the screenshot goes: `$CBDC_E2E_LOG_DIR`, else `<target dir>/e2e-artifacts`.
fn screenshot_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("CBDC_E2E_LOG_DIR") {
        return PathBuf::from(dir).join("dashboard.png");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        // This executable is <target>/<profile>/deps/e2e-<hash>.
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
    });
    target.join("e2e-artifacts/dashboard.png")
}

/// A token of bank 1's operations API (its first operator), once that API answers.
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn bank_operator_token(net: &Network, ca: &str) -> Result<String> {
    let port = cbdc_service::init::bank_api(net.nodes[1].http)?.port();
    let mut client =
        wallet_api::client::WalletClient::new(&format!("https://localhost:{port}"), Some(ca))?;
    let file = net.net_dir().join("bank-1/credentials/operator.password");
    let start = Instant::now();
    loop {
        let password = std::fs::read_to_string(&file).unwrap_or_default();
        let last = match client.login("operator", password.trim_end_matches(['\r', '\n'])) {
            Ok(t) => return Ok(t.access_token),
            Err(e) => e,
        };
        if start.elapsed() > Duration::from_secs(60) {
            bail!("bank 1's API did not log its operator in: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn regulators_dashboard_in_headless_chromium() -> Result<()> {
    // The browser first: a machine without it fails at once, naming scripts/prerequisites.
    let browser = WebDriver::start()?;
    let base = port_base(11);
    let net = Network::start(4, base, "sqlite")?;
    let result = run(&net, &browser, base);
    if result.is_err() {
        net.save_logs();
        if let Ok(dir) = std::env::var("CBDC_E2E_LOG_DIR") {
            let _ = browser.screenshot(&PathBuf::from(dir).join("dashboard-failure.png"));
        }
    }
    result
}

#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn run(net: &Network, browser: &WebDriver, base: u16) -> Result<()> {
    let api = connect(net, base)?;
    let addr = cbdc_service::init::central_bank_api(base + 50)?;
    let ca = std::fs::read_to_string(net.net_dir().join("central-bank/pki/ca.pem"))?;
    let client = ApiClient::new(addr, "localhost", &ca, None)?;
    let officers = [api.login("officer-0")?, api.login("officer-1")?];
    let regulator = api.login("regulator")?;

    // Activity: issuance to two banks.
    issue(&api, &officers, 1, 5_000_000)?;
    issue(&api, &officers, 2, 3_000_000)?;

    // The dashboard's data: regulators only; tokens of other services are not the API's.
    let dashboard = |token: Option<&str>| client.call("GET", "/v1/dashboard", token, None);
    assert_eq!(dashboard(None)?.status, 401, "no token");
    assert_eq!(dashboard(Some(&officers[0]))?.status, 403, "an officer's token");
    let operator = bank_operator_token(net, &ca)?;
    assert_eq!(dashboard(Some(&operator))?.status, 401, "a bank operator's token (bank 1's API)");
    let ok = dashboard(Some(&regulator))?;
    assert_eq!(ok.status, 200, "a regulator's token: {}", ok.body);

    // The page, from the central bank API's own origin.
    let origin = format!("https://localhost:{}", addr.port());
    browser.goto(&format!("{origin}/dashboard/"))?;
    let form_wait = Duration::from_secs(15);
    browser.wait_for(form_wait, "the login form", |b| b.try_find("button#login"))?;

    // A wrong password, then a role other than regulator: a message each, no figures.
    sign_in(browser, "regulator", "not-the-password")?;
    let wrong = login_error(browser, "")?;
    eprintln!("wrong password: #login-error says {wrong:?}");
    assert!(browser.try_find(FILLED)?.is_none(), "figures shown after a failed login");
    sign_in(browser, "officer-0", &password(net, "officer-0")?)?;
    let refused = login_error(browser, &wrong)?;
    eprintln!("an officer: #login-error says {refused:?}");
    assert!(browser.try_find(FILLED)?.is_none(), "figures shown to an officer");

    // The regulator logs in.
    sign_in(browser, "regulator", &password(net, "regulator")?)?;
    browser
        .wait_for(Duration::from_secs(30), "#supply-outstanding[data-minor]", |b| {
            b.try_find(FILLED)
        })
        .with_context(|| {
            let error = browser.find("#login-error").and_then(|e| e.text()).unwrap_or_default();
            format!("after the regulator's login (#login-error: {error:?})")
        })?;
    assert!(browser.find("#dashboard")?.is_displayed()?, "#dashboard is not shown");
    assert!(!browser.find("button#login")?.is_displayed()?, "the login form is still shown");
    let supply_el = browser.find("#supply-outstanding")?;
    eprintln!(
        "dashboard: {:?}, outstanding shown as {:?} (data-minor {:?})",
        browser.title()?,
        supply_el.text()?,
        supply_el.attribute("data-minor")?
    );

    // The page's figures equal the API's at the same height. The chain makes several (empty)
    // blocks a second and the page polls every 2 s, so the API is read just before and just
    // after a page refresh: minted and burned totals only grow, so when both are unchanged
    // between the API's two heights, no mint or burn happened in between and the API's figures
    // hold at every height in that range, the page's included.
    let (page, supply) = same_height(browser, &|| supply_now(&client, &regulator))?;
    eprintln!("page at height {}: {page:?}", page.height);
    assert_eq!(
        Some(page.outstanding_minor),
        supply["outstanding_minor"].as_u64(),
        "outstanding supply"
    );
    assert_eq!(page.outstanding_minor, 8_000_000, "both mints are in the supply");
    let api_banks = supply["banks"].as_array().context("/v1/supply banks")?;
    for bank in api_banks {
        let id = bank["id"].as_u64().context("bank id")?;
        let row = page.banks.get(&id).with_context(|| format!("no tr.bank-row for bank {id}"))?;
        assert_eq!(Some(row.issued_minor), bank["issued_minor"].as_u64(), "bank {id}'s issuance");
    }
    for id in page.banks.keys() {
        assert!(
            api_banks.iter().any(|b| b["id"].as_u64() == Some(*id)),
            "a row for bank {id}, which /v1/supply does not list"
        );
    }
    // The same rows through WebDriver's own element lookups.
    let mut ids = Vec::new();
    for row in browser.find_all("tr.bank-row")? {
        ids.push(minor(&json!(row.attribute("data-bank-id")?), "data-bank-id")?);
    }
    ids.sort_unstable();
    assert_eq!(ids, page.banks.keys().copied().collect::<Vec<_>>(), "bank rows");
    // No customer wallets yet: each bank's issuance sits in its float.
    for (id, issued) in [(1, 5_000_000), (2, 3_000_000)] {
        let row = &page.banks[&id];
        assert_eq!(
            (row.issued_minor, row.float_minor, row.holdings_minor),
            (issued, issued, 0),
            "bank {id}"
        );
    }

    // The charts are inline SVG, and nothing comes from another origin.
    for chart in ["#chart-supply", "#chart-banks", "#chart-tiers", "#chart-payments"] {
        browser.find(&format!("svg.chart{chart}")).with_context(|| format!("chart {chart}"))?;
    }
    let resources =
        browser.execute("return performance.getEntriesByType('resource').map(e => e.name)", &[])?;
    for r in resources.as_array().context("resource list")? {
        let r = r.as_str().unwrap_or_default();
        assert!(r.starts_with(&format!("{origin}/")), "a resource from another origin: {r}");
    }

    // A screenshot, kept as an artifact.
    let shot = screenshot_path();
    browser.screenshot(&shot)?;
    let png = std::fs::read(&shot)?;
    assert!(
        png.len() > 8 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        shot.display()
    );
    eprintln!("screenshot: {} ({} bytes)", shot.display(), png.len());

    // Live update: a new mint shows up without a reload (the marker survives).
    browser.execute("window.__cbdcE2eMarker = 'still here'; return null;", &[])?;
    issue(&api, &officers, 1, 2_000_000)?;
    let expected =
        client.call("GET", "/v1/supply", Some(&regulator), None)?.json()?["outstanding_minor"]
            .as_u64()
            .context("outstanding_minor")?;
    assert_eq!(expected, 10_000_000);
    let updated = browser.wait_for(Duration::from_secs(30), "the new supply on the page", |b| {
        let page = page_figures(b)?.context("figures vanished")?;
        Ok((page.outstanding_minor == expected).then_some(page))
    })?;
    assert_eq!(updated.banks[&1].issued_minor, 7_000_000, "bank 1's issuance after the new mint");
    let marker = browser.execute("return window.__cbdcE2eMarker || null;", &[])?;
    assert_eq!(marker, json!("still here"), "the page reloaded instead of updating in place");
    Ok(())
}
