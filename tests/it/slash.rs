//! Discord slash commands: every chat command is registered at start (per configured guild),
//! answered through the interaction (acknowledged at once, the answer replacing the
//! placeholder), under the same access rules as messages.

use crate::support::fake_discord::FakeDiscord;
use crate::support::*;
use std::time::Duration;

async fn original(d: &FakeDiscord, token: &str) -> String {
    for _ in 0..400 {
        if let Some((_, c)) = d.originals().into_iter().find(|(t, _)| t == token) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "slash command {token} was never answered: {:?}",
        d.originals()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_commands_are_registered_answered_and_refused_to_strangers() {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let _gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "allowlist",
                 allowFrom: ["42"], guilds: {{ "40": {{ channels: ["41"] }} }} }} }},"#,
            d.api_url
        ),
    )
    .await;
    d.wait_until("slash commands to be registered", |d| {
        !d.registrations().is_empty()
    })
    .await;
    let (guild, names) = d.registrations()[0].clone();
    assert_eq!(guild, Some(40));
    for n in [
        "help", "new", "status", "task", "tasks", "cancel", "stop", "agent", "model", "cron",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }

    let token = d.slash(41, Some(40), 42, "help", None);
    let help = original(&d, &token).await;
    assert!(help.contains("/new") && help.contains("/stop"), "{help}");
    // Acknowledged with a deferred response first (type 5).
    assert!(d.interaction_answers().iter().any(|a| a.kind == 5));

    // A command with an argument, in a DM from an allowed user.
    let token = d.slash(500_042, None, 42, "task", Some("write the weekly report"));
    let started = original(&d, &token).await;
    assert!(started.contains("Task #1 started"), "{started}");

    // Strangers: a DM under allowlist, and a guild channel that is not served.
    let token = d.slash(500_077, None, 77, "status", None);
    assert!(original(&d, &token).await.contains("not allowed"));
    let token = d.slash(43, Some(40), 42, "status", None);
    assert!(original(&d, &token).await.contains("not allowed"));
    // None of them reached the model.
    assert!(
        model
            .requests()
            .iter()
            .all(|r| !r.last_user_text().contains("status")),
    );
}
