//! A real browser for the console's tests: Debian's Chromium, headless, driven over WebDriver by
//! its ChromeDriver (`apt-get install chromium chromium-driver`; `scripts/test` installs them),
//! and axe-core (vendored in `tests/vendor/`) to check each page against WCAG 2.2 A and AA.
//!
//! Every page a test navigates to (`goto`, `click_and_wait`, `press_and_wait`) or checks for
//! accessibility is checked for errors in the browser's console (a failed request, a refused
//! stylesheet, a script error): any fails the test. Every page checked for
//! accessibility is also photographed, under `target/console-screenshots/`, for review.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const AXE: &str = include_str!("../vendor/axe-core-4.14.1/axe.min.js");

/// A headless Chromium session; the driver is killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// The profile and the temporary files of the driver and the browser.
    scratch: std::path::PathBuf,
    /// The origin of the first page visited: the service under test, whose console errors count.
    home: std::sync::OnceLock<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and the browser it started share a process group of their own: kill it
        // whole, or every test leaves a headless Chromium running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the console's browser tests need Chromium and ChromeDriver: \
             `apt-get install chromium chromium-driver` (scripts/test does it)"
        );
        let port = free_port();
        // Everything the driver and the browser write goes under one directory, removed when
        // the session is dropped: the profile, and their own temporary files (killed, they
        // would leave a `org.chromium.Chromium.*` directory in /tmp for every test).
        // Short names: the browser's socket lives in there, and a unix socket's path is short.
        let scratch = std::env::temp_dir().join(format!(
            "cbc-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        let temporary = scratch.join("t");
        std::fs::create_dir_all(&temporary).expect("the browser's temporary directory");
        // The browser keeps the real clock when the tests run a year ahead (`.ci/a-year-ahead`).
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .env("TMPDIR", &temporary)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = scratch.join("p");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        // The browser's console, read after every page (`se/log`, ChromeDriver's own command).
        capabilities.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
        let started = Instant::now();
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    tracing::debug!(error = %e, "chromedriver not ready");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session after 30 s: {e}"),
            }
        };
        Browser {
            client,
            driver,
            scratch,
            home: std::sync::OnceLock::new(),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigating");
        if let Ok(parsed) = url::Url::parse(url) {
            let _ = self.home.set(parsed.origin().ascii_serialization());
        }
        self.assert_no_console_errors().await;
    }

    /// Fails on anything the browser's console reported as an error since the last look: a
    /// request that failed or answered 5xx, a stylesheet or image refused by the page's CSP, a
    /// script error. A page's own 4xx status (a refused form shown again, a page not found) is
    /// what the tests ask for, and the tests check those pages' contents themselves. Only the
    /// service's own pages and resources count: another site's (an OpenID provider's sign-in
    /// page) are not ours to mend.
    pub async fn assert_no_console_errors(&self) {
        let home = self.home.get().map(String::as_str).unwrap_or_default();
        let page = self.client.current_url().await.expect("the url");
        let entries = self
            .client
            .issue_cmd(ConsoleLog)
            .await
            .expect("reading the browser's console");
        let errors: Vec<String> = entries
            .as_array()
            .unwrap_or_else(|| panic!("the browser's console log is not a list: {entries}"))
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .filter_map(|entry| entry["message"].as_str())
            .filter(|message| message.starts_with(home) || !message.starts_with("http"))
            .filter(|message| !is_own_client_error(message, page.as_str()))
            .map(str::to_owned)
            .collect();
        assert!(
            errors.is_empty(),
            "the browser's console reported errors on {}: {errors:#?}",
            page.path()
        );
    }

    /// Writes a screenshot of the page to `target/console-screenshots/<test>--<what>.png`.
    pub async fn screenshot(&self, what: &str) {
        // The whole page: the window made as tall as the page for the picture.
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .ok()
            .and_then(|h| h.as_u64())
            .unwrap_or(900)
            .clamp(900, 8000) as u32;
        let _ = self.client.set_window_size(1280, height).await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let _ = self.client.set_window_size(1280, 900).await;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .rsplit("::")
            .next()
            .unwrap_or("test")
            .to_owned();
        let name: String = format!("{test}--{what}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(dir.join(format!("{name}.png")), png).expect("writing the screenshot");
    }

    /// The page's path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The first element matching `css` (the test fails, naming the page, when there is none).
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let path = self.path().await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on {path}: {e}"))
    }

    /// The attribute `name` of the first element matching `css`, if it has it.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css)
            .await
            .attr(name)
            .await
            .expect("its attribute")
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("its text")
    }

    /// Every element matching `css`, as their text.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("finding")
        {
            out.push(element.text().await.expect("its text"));
        }
        out
    }

    /// What the page's error summary asks to put right, in order.
    pub async fn error_summary(&self) -> Vec<String> {
        self.texts(".nhsuk-error-summary__list a").await
    }

    /// Clicks the first element matching `css` and waits for the page it leads to.
    pub async fn click_and_wait(&self, css: &str) {
        let path = self.path().await;
        self.client
            .execute("window.casebookOldPage = true;", vec![])
            .await
            .expect("marking the page");
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on {path}: {e}"))
            .click()
            .await
            .expect("clicking");
        self.wait_for_new_page().await;
    }

    /// Clicks the first element matching `css` (a radio's label, say): no new page.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("clicking");
    }

    /// Sets the field of id `id` to `value`, as if typed over what was there.
    pub async fn fill(&self, id: &str, value: &str) {
        self.client
            .execute(
                "document.getElementById(arguments[0]).value = arguments[1];",
                vec![id.into(), value.into()],
            )
            .await
            .expect("filling a field");
    }

    /// The value of the field of id `id`, as the browser has it (what was typed, or kept).
    pub async fn value_of(&self, id: &str) -> String {
        self.client
            .execute(
                "return document.getElementById(arguments[0]).value;",
                vec![id.into()],
            )
            .await
            .expect("reading a field")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Chooses the option of value `value` in the select `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("choosing an option");
    }

    /// Fails when the page weighs more than 300 KB as sent (issue #17): its HTML and every
    /// resource it loaded, by their encoded sizes (a resource served from the browser's cache
    /// still counts, as it would on a first visit).
    pub async fn assert_page_weight(&self, what: &str) {
        self.assert_page_weight_under(what, 300 * 1024).await;
    }

    /// Fails when the page weighs more than `limit` bytes as sent.
    pub async fn assert_page_weight_under(&self, what: &str, limit: u64) {
        let sizes = self
            .client
            .execute(
                "return performance.getEntriesByType('navigation')                   .concat(performance.getEntriesByType('resource'))                   .map(e => [e.name, e.encodedBodySize]);",
                vec![],
            )
            .await
            .expect("reading the page's resources");
        let sizes: Vec<(String, u64)> = serde_json::from_value(sizes).expect("names and sizes");
        let total: u64 = sizes.iter().map(|(_, size)| size).sum();
        // The stylesheet went compressed (271 KB as vendored, 29 KB as sent).
        for (name, size) in sizes.iter().filter(|(name, _)| name.ends_with(".css")) {
            assert!(
                *size < 64 * 1024,
                "{name} was sent whole ({size} bytes) on {what}"
            );
        }
        assert!(
            sizes.first().is_some_and(|(_, html)| *html > 0),
            "the page's own size is measured on {what}: {sizes:?}"
        );
        assert!(
            total <= limit,
            "{what} weighs {total} bytes as sent, over {limit}: {sizes:?}"
        );
    }

    /// Runs axe-core on the page and fails with every violation of WCAG 2.2 A and AA; checks
    /// the browser's console and takes the page's screenshot.
    pub async fn assert_accessible(&self, what: &str) {
        self.assert_no_console_errors().await;
        self.screenshot(what).await;
        self.assert_page_weight(what).await;
        let loaded = self
            .client
            .execute(&format!("{AXE}\n;return typeof axe;"), vec![])
            .await
            .expect("injecting axe-core");
        assert_eq!(loaded, json!("object"), "axe-core did not load on {what}");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {runOnly: {type: 'tag', values: \
                   ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa']}})\
                   .then(r => done({violations: r.violations.map(v => ({id: v.id, impact: v.impact, \
                     help: v.help, nodes: v.nodes.map(n => n.html)})), passes: r.passes.length}))\
                   .catch(e => done({error: String(e)}));",
                vec![],
            )
            .await
            .expect("running axe-core");
        assert_eq!(result.get("error"), None, "axe-core failed on {what}");
        assert!(
            result["passes"].as_u64().unwrap_or(0) > 5,
            "axe-core checked almost nothing on {what}: {result}"
        );
        assert_eq!(
            result["violations"],
            Value::Array(vec![]),
            "accessibility violations on {what}"
        );
    }

    /// The id of the focused element.
    pub async fn focused(&self) -> String {
        self.client
            .execute(
                "return document.activeElement && document.activeElement.id;",
                vec![],
            )
            .await
            .expect("asking for focus")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Presses `key` on whatever has the focus.
    pub async fn press(&self, key: &str) {
        self.client
            .active_element()
            .await
            .expect("a focused element")
            .send_keys(key)
            .await
            .expect("pressing a key");
    }

    /// Presses `key` on whatever has the focus, and waits until the page it leads to has
    /// loaded (a form sent, a link followed): at most 20 s.
    pub async fn press_and_wait(&self, key: &str) {
        self.client
            .execute("window.casebookOldPage = true;", vec![])
            .await
            .expect("marking the page");
        self.press(key).await;
        self.wait_for_new_page().await;
    }

    /// Waits until the page marked `casebookOldPage` is gone and its successor has loaded.
    async fn wait_for_new_page(&self) {
        let started = Instant::now();
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.casebookOldPage === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .unwrap_or(Value::Bool(false));
            if loaded == Value::Bool(true) {
                self.assert_no_console_errors().await;
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no new page after a key on {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses Tab on the page as a keyboard does (WebDriver's key actions). Not sent to the
    /// focused element: ChromeDriver sets a date field's value to what is sent to it, so Tab
    /// sent to a date field would never leave it.
    async fn press_tab(&self) {
        let tab = char::from(Key::Tab);
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab });
        self.client
            .perform_actions(keys)
            .await
            .expect("pressing Tab");
    }

    /// Presses Tab until the element with id `id` has the focus (at most 80 times).
    pub async fn tab_to(&self, id: &str) {
        for _ in 0..80 {
            if self.focused().await == id {
                return;
            }
            self.press_tab().await;
        }
        panic!("Tab never reached #{id} on {}", self.path().await);
    }

    /// Presses Tab until a link whose text contains `text` has the focus (at most 80 times).
    pub async fn tab_to_link(&self, text: &str) {
        for _ in 0..80 {
            let focused = self
                .client
                .execute(
                    "const e = document.activeElement; return e && e.tagName === 'A' ? e.textContent : '';",
                    vec![],
                )
                .await
                .expect("asking for focus");
            if focused.as_str().is_some_and(|t| t.contains(text)) {
                return;
            }
            self.press_tab().await;
        }
        panic!("Tab never reached a link {text:?} on {}", self.path().await);
    }

    /// The session cookie's value, as the browser holds it.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }
}

/// ChromeDriver's command for the browser console's entries since it was last asked.
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// Whether a console error is the page's own 4xx status (Chrome logs "Failed to load
/// resource: the server responded with a status of 422" for the document itself).
fn is_own_client_error(message: &str, page: &str) -> bool {
    let Some(status) = message
        .split("status of ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|code| code.parse::<u16>().ok())
    else {
        return false;
    };
    (400..500).contains(&status) && message.starts_with(&format!("{page} "))
}

/// `target/console-screenshots`, beside the test binary's `debug` directory.
fn screenshot_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("console-screenshots"))
        .unwrap_or_else(|| std::env::temp_dir().join("console-screenshots"))
}
