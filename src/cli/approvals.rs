//! `switchboard approvals list | approve ID | deny ID`: through the running gateway (which wakes
//! the waiting turn and marks the chat's question), or straight in the database when it is down
//! (the interrupted turn finds the answer when the gateway handles it again).

use crate::config::Config;
use crate::gateway::client::{Client, ClientError};
use crate::store::{ApprovalRow, ApprovalStatus, Store};

pub async fn list(config: &Config, all: bool, json: bool) -> anyhow::Result<()> {
    let rows = match Client::from_config(config).approvals(all).await {
        Ok(r) => r,
        Err(ClientError::Unreachable { .. }) => {
            Store::for_config(config)?.approvals_list(!all).await?
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "{}",
            if all {
                "no approval requests"
            } else {
                "no pending approval requests"
            }
        );
    }
    for r in &rows {
        print_row(r);
    }
    Ok(())
}

fn print_row(r: &ApprovalRow) {
    let args: String = r.args.chars().take(200).collect();
    let state = match (r.status, &r.decided_by) {
        (ApprovalStatus::Pending, _) => "pending".to_string(),
        (s, Some(by)) => format!("{} by {by}", s.as_str()),
        (s, None) => s.as_str().to_string(),
    };
    println!(
        "#{}  {}  {} wants `{}` {args}  [{state}]",
        r.id,
        r.target.as_deref().unwrap_or("-"),
        r.agent,
        r.tool
    );
}

pub async fn answer(config: &Config, id: i64, answer: &str) -> anyhow::Result<()> {
    match Client::from_config(config)
        .approval_answer(id, answer)
        .await
    {
        Ok(done) => {
            println!("{}", done.message);
            Ok(())
        }
        Err(ClientError::Unreachable { .. }) => {
            let store = Store::for_config(config)?;
            let approve = answer != "deny";
            match store
                .approval_decide(id, approve, answer == "approve-session", "the terminal")
                .await?
            {
                Some(r) => {
                    println!(
                        "{} request #{id} (`{}`); the gateway is not running: the turn that asked uses the answer when it is handled again",
                        if approve { "Approved" } else { "Denied" },
                        r.tool
                    );
                    Ok(())
                }
                None => match store.approval(id).await? {
                    Some(r) => anyhow::bail!("request #{id} is already {}", r.status.as_str()),
                    None => Err(super::UsageError(format!("no approval request #{id}")).into()),
                },
            }
        }
        Err(e) => Err(e.into()),
    }
}
