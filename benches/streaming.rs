//! Streaming benchmark (prints figures; asserts nothing about time). The fake model streams each
//! reply as 20 deltas 50 ms apart; the real gateway shows it on the fake platforms:
//!
//! - time from the model's first token to the first visible text: a Telegram draft (private
//!   chat), the first message of an edited-in-place reply (Telegram group, Discord), p50/p99;
//! - of that, what the gateway adds beyond its deliberate pause before the first preview
//!   (`FIRST_AFTER`, 30 ms: a reply complete by then is simply sent);
//! - preview updates (drafts or edits) per streamed reply;
//! - the gateway's CPU per streamed delta: a batch of 20-delta replies beside a batch of the
//!   same replies in one delta, the difference divided by the extra deltas.
//!
//! Run: `cargo bench --bench streaming`.

#[path = "../tests/it/support/mod.rs"]
mod support;

mod common;

use common::{cpu_secs, ms, pct};
use std::time::{Duration, Instant};
use support::fake_telegram::FakeTelegram;
use support::{FakeModel, Reply, TestGateway};

const REPLIES: usize = 30;
const DELTAS: usize = 20;
const PACE: Duration = Duration::from_millis(50);
const GROUP: i64 = -100_500;
/// The gateway's pause before a reply's first preview (`delivery::preview::FIRST_AFTER`).
const FIRST_AFTER: Duration = Duration::from_millis(30);

fn text(i: usize) -> String {
    format!(
        "Reply {i}: streaming lets the person see the answer take shape while the model is \
         still writing it, which on a phone feels far more alive than a long silence."
    )
}

async fn wait(what: &str, pred: impl Fn() -> bool) {
    for _ in 0..2400 {
        if pred() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

fn report(label: &str, mut lat: Vec<Duration>, updates: f64) {
    lat.sort();
    let added: Vec<Duration> = lat.iter().map(|d| d.saturating_sub(FIRST_AFTER)).collect();
    println!(
        "{label:<28} first text visible after the first token: p50 {:6.1} ms  p99 {:6.1} ms \
         (gateway beyond its {} ms pause: p50 {:5.1} ms, p99 {:5.1} ms); {updates:.1} updates/reply",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        FIRST_AFTER.as_millis(),
        ms(pct(&added, 0.5)),
        ms(pct(&added, 0.99)),
    );
}

async fn telegram() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open",
                 groups: {{ "{GROUP}": {{ requireMention: false }} }} }} }},"#,
            tg.url
        ),
    )
    .await;
    let pid = gw.pid().expect("gateway pid");
    // Private chat: drafts.
    let mut lat = Vec::new();
    for i in 0..REPLIES {
        model.on(None, Reply::paced(&text(i), DELTAS, PACE));
        let drafts_before = tg.drafts_at().len();
        tg.dm(111, &format!("question {i}"));
        wait("the reply", || tg.sent_to(111).len() > i).await;
        let first = model.first_text_at()[i];
        let shown = tg.drafts_at()[drafts_before];
        lat.push(shown.saturating_duration_since(first));
    }
    report(
        "telegram, private (draft)",
        lat,
        tg.drafts().len() as f64 / REPLIES as f64,
    );
    // Group: one message edited in place.
    let mut lat = Vec::new();
    let edits_before = tg.edits().len();
    let cpu_paced = cpu_secs(pid);
    for i in 0..REPLIES {
        model.on(None, Reply::paced(&text(i), DELTAS, PACE));
        tg.group(GROUP, 7, &format!("question {i}"), None);
        wait("the reply", || {
            tg.sent_to(GROUP).get(i).is_some_and(|m| m.text == text(i))
        })
        .await;
        let first = model.first_text_at()[REPLIES + i];
        let shown = tg.sent_to(GROUP)[i].at;
        lat.push(shown.saturating_duration_since(first));
    }
    tg.settle().await;
    let cpu_paced = cpu_secs(pid) - cpu_paced;
    let updates = (tg.edits().len() - edits_before) as f64 / REPLIES as f64;
    report("telegram, group (edits)", lat, updates);
    // The same replies in one delta each (no preview), for the CPU per delta.
    let cpu_whole = cpu_secs(pid);
    for i in 0..REPLIES {
        model.on(None, Reply::paced(&text(i), 1, PACE));
        tg.group(GROUP, 7, &format!("again {i}"), None);
        wait("the reply", || tg.sent_to(GROUP).len() > REPLIES + i).await;
    }
    tg.settle().await;
    let cpu_whole = cpu_secs(pid) - cpu_whole;
    let extra = (REPLIES * (DELTAS - 1)) as f64;
    println!(
        "telegram, group: gateway CPU {:.1} ms per 20-delta reply (with its preview) vs {:.1} ms \
         in one delta: {:.0} µs per extra delta, preview updates included",
        cpu_paced * 1e3 / REPLIES as f64,
        cpu_whole * 1e3 / REPLIES as f64,
        (cpu_paced - cpu_whole) * 1e6 / extra
    );
}

async fn discord() {
    let (model, d, _gw) = support::discord_gateway("").await;
    let mut lat = Vec::new();
    for i in 0..REPLIES {
        model.on(None, Reply::paced(&text(i), DELTAS, PACE));
        d.message(41, Some(40), 31, &format!("question {i}"), false);
        wait("the reply", || {
            d.sent().get(i).is_some_and(|m| m.content == text(i))
        })
        .await;
        let first = model.first_text_at()[i];
        let shown = d.sent()[i].at;
        lat.push(shown.saturating_duration_since(first));
    }
    report(
        "discord (edits)",
        lat,
        d.edits().len() as f64 / REPLIES as f64,
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let started = Instant::now();
    telegram().await;
    discord().await;
    println!(
        "(streaming bench took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
}
