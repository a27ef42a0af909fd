//! The Markdown → Telegram HTML renderer: whatever a model writes, Telegram accepts the HTML.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/support/telegram_html.rs"]
mod telegram_html;

fuzz_target!(|md: &str| {
    let html = switchboard_telegram::markdown_to_html(md);
    if let Err(why) = telegram_html::telegram_html(&html) {
        panic!("Telegram would refuse {html:?} (from {md:?}): {why}");
    }
});
