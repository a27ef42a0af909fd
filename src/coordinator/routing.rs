//! Which agent answers a message: the first matching `routing` rule, else the coordinator.

use crate::config::Config;
use switchboard_channel::Inbound;

pub fn route(config: &Config, m: &Inbound) -> String {
    for rule in &config.routing {
        let r = &rule.match_;
        let channel_ok = r.channel.as_deref().is_none_or(|c| c == m.chat.channel);
        // `chat` may be written as the bare id (`123`) or as our chat form (`channel:123`).
        let chat_ok = r
            .chat
            .as_deref()
            .is_none_or(|c| c == m.chat.chat || m.chat.chat.rsplit(':').next() == Some(c));
        let sender_ok = r.sender.as_deref().is_none_or(|s| s == m.sender.id);
        if channel_ok && chat_ok && sender_ok {
            return rule.agent.clone();
        }
    }
    config.coordinator().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_channel::Target;

    #[test]
    fn first_matching_rule_wins_else_coordinator() {
        let text = r#"{ providers: { p: {} }, models: { default: "p/m" },
            agents: { jarvis: { coordinator: true }, clu: {}, cortana: {} },
            routing: [
              { match: { channel: "discord", chat: "42" }, agent: "clu" },
              { match: { sender: 7 }, agent: "cortana" },
            ] }"#;
        let c = Config::from_text(std::path::Path::new("c"), text).unwrap();
        let m = |ch: &str, chat: &str, sender: &str| {
            Inbound::direct(Target::new(ch, chat), sender, "1", "hi")
        };
        assert_eq!(route(&c, &m("discord", "channel:42", "1")), "clu");
        assert_eq!(route(&c, &m("telegram", "42", "7")), "cortana");
        assert_eq!(route(&c, &m("telegram", "42", "1")), "jarvis");
    }
}
