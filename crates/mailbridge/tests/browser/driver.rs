//! A real browser for the web admin's tests: Debian's Chromium, headless, driven
//! through chromedriver (WebDriver) by fantoccini. Screenshots go to
//! `target/screenshots/` so that a run leaves pictures of the main pages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

pub struct Browser {
    pub client: Client,
    driver: Child,
    pub base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where screenshots are written.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1440×1000.
    pub async fn start(base: &str) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs (Debian package chromium-driver; ./scripts/test installs it)",
            );
        let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1440,1000", "--hide-scrollbars", "--force-device-scale-factor=1"]
            }
        }))
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("rustls roots load")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromedriver at {url} did not start a session: {e}"),
            }
        };
        Browser {
            client,
            driver,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Opens a path of the web admin.
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The current path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits (up to 30 s) for an element matching `css`.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on {}: {e}", self.base))
    }

    /// Waits (up to `secs`) until the page's text contains `text`.
    pub async fn wait_for_text(&self, text: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let body = self.text("body").await;
            if body.contains(text) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "the page {} never showed {text:?}; it shows:\n{body}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    /// Replaces the value of input `css` with `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    /// Clicks the first element matching `css`, scrolled to the middle of the window
    /// first (the top bar is sticky and would take a click at the top edge).
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        let arg = serde_json::to_value(&e).unwrap();
        self.client
            .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
            .await
            .unwrap();
        e.click()
            .await
            .unwrap_or_else(|err| panic!("clicking {css} on {}: {err}", self.base));
    }

    /// Chooses the option with value `value` of select `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {css} has no option {value}: {e}"));
    }

    /// Scrolls the first element matching `css` to the top of the window.
    pub async fn scroll_to(&self, css: &str) {
        let e = self.find(css).await;
        let arg = serde_json::to_value(&e).unwrap();
        self.client
            .execute("arguments[0].scrollIntoView({block: 'start'});", vec![arg])
            .await
            .unwrap();
    }

    /// Saves a PNG of the window as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        assert!(png.len() > 10_000, "screenshot {name} is nearly empty");
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A browser signed in as the system administrator of `w`, looking at `w`'s
/// organization.
pub async fn signed_in(w: &crate::common::World) -> Browser {
    let b = Browser::start(&w.base).await;
    b.open("/sign-in").await;
    b.click("#tab-token").await;
    b.fill("#token", &w.admin).await;
    b.click("#token-form button[type=submit]").await;
    b.wait_for_text("Choose an organization", 10).await;
    b.click(&format!("button.choice[value='{}']", w.org)).await;
    b.open("/alerts").await;
    b.wait_for_text("Sign out", 10).await;
    b
}
