//! `switchboard chat`: a terminal conversation through the gateway's local channel.
//!
//! Interactive: a prompt per line, and messages that arrive on their own (task results) are
//! printed as they come. Piped: each input line is a message, each reply is printed, and it exits
//! after the last reply, so scripts can drive it.

use crate::config::Config;
use crate::gateway::api::ChatRequest;
use crate::gateway::client::Client;
use std::io::{BufRead, IsTerminal, Write};

pub async fn run(config: &Config, chat: &str, agent: Option<String>) -> anyhow::Result<()> {
    let client = Client::from_config(config);
    // Fail fast with the reachability help before reading any input.
    client.status().await?;
    let interactive = std::io::stdin().is_terminal();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut agent = agent;
    let name = agent
        .clone()
        .unwrap_or_else(|| config.coordinator().to_string());
    let mut seen = 0u64;
    if interactive {
        println!("Talking to {name} in local:{chat}. /help for commands, Ctrl-D to quit.");
    }
    loop {
        if interactive {
            print!("you> ");
            std::io::stdout().flush()?;
        }
        let line = if interactive {
            // Print unsolicited messages (task results) while waiting for input.
            loop {
                tokio::select! {
                    l = rx.recv() => break l,
                    msgs = client.poll(chat, seen, 25) => {
                        for m in msgs.unwrap_or_default() {
                            seen = seen.max(m.seq);
                            println!("\n{}\nyou> ", m.text);
                        }
                        std::io::stdout().flush()?;
                    }
                }
            }
        } else {
            rx.recv().await
        };
        let Some(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let resp = client
            .chat(&ChatRequest {
                chat: chat.to_string(),
                text: line,
                agent: agent.take(),
            })
            .await?;
        seen = seen.max(resp.seq);
        if interactive {
            println!("{name}> {}", resp.reply);
        } else {
            println!("{}", resp.reply);
        }
    }
    Ok(())
}
