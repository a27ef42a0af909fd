//! serenity messages, slash commands and button presses → our inbound types. Messages from bots
//! (ourselves included) are dropped.

use serenity::model::application::{
    CommandDataOptionValue, CommandInteraction, ComponentInteraction,
};
use serenity::model::channel::{Message, MessageFlags};
use serenity::model::id::{ChannelId, GuildId};
use serenity::model::user::User;
use switchboard_channel::{
    AudioAttachment, FileAttachment, FileKind, Inbound, Press, SenderInfo, Target,
};

/// The chat an answer goes to: a DM by its user, a guild channel by its id (a thread is a
/// channel of its own in Discord, so answering in it keeps the thread).
fn chat(guild: Option<GuildId>, channel: ChannelId, user: &User) -> Target {
    let chat = match guild {
        None => format!("dm:{}", user.id.get()),
        Some(_) => format!("channel:{}", channel.get()),
    };
    Target::new("discord", chat)
}

fn sender(user: &User) -> SenderInfo {
    SenderInfo {
        id: user.id.get().to_string(),
        name: Some(
            user.global_name
                .clone()
                .unwrap_or_else(|| user.name.clone()),
        ),
    }
}

/// A slash command → the chat command it stands for (`/task clu write the report`). Its
/// `message_id` is `i:<interaction id>`, which `Rest::send` answers through the interaction.
pub(crate) fn slash_command(c: &CommandInteraction) -> Inbound {
    let mut text = format!("/{}", c.data.name);
    for o in &c.data.options {
        let v = match &o.value {
            CommandDataOptionValue::String(s) => s.clone(),
            CommandDataOptionValue::Integer(n) => n.to_string(),
            CommandDataOptionValue::Number(n) => n.to_string(),
            CommandDataOptionValue::Boolean(b) => b.to_string(),
            _ => continue,
        };
        text.push(' ');
        text.push_str(&v);
    }
    Inbound {
        chat: chat(c.guild_id, c.channel_id, &c.user),
        thread: None,
        space: c.guild_id.map(|g| g.get().to_string()),
        sender: sender(&c.user),
        text,
        audio: None,
        files: Vec::new(),
        message_id: format!("i:{}", c.id.get()),
        reply_to_text: None,
        is_direct: c.guild_id.is_none(),
        // A slash command is addressed to the bot.
        mentions_bot: true,
    }
}
/// A pressed message button → our [`Press`]. The chat is named as for messages: a DM by the
/// user, a guild channel by its id.
pub(crate) fn press(i: &ComponentInteraction) -> Press {
    Press {
        chat: chat(i.guild_id, i.channel_id, &i.user),
        sender: sender(&i.user),
        message_id: i.message.id.get().to_string(),
        data: i.data.custom_id.clone(),
    }
}

pub(crate) fn inbound(msg: &Message, me: u64) -> Option<Inbound> {
    if msg.author.bot || msg.author.id.get() == me {
        return None;
    }
    let is_direct = msg.guild_id.is_none();
    let mention_forms = [format!("<@{me}>"), format!("<@!{me}>")];
    let mentioned = msg.mentions.iter().any(|u| u.id.get() == me)
        || mention_forms
            .iter()
            .any(|m| msg.content.contains(m.as_str()));
    let replied_to_bot = msg
        .referenced_message
        .as_ref()
        .is_some_and(|r| r.author.id.get() == me);
    let mut text = msg.content.clone();
    for m in &mention_forms {
        text = text.replace(m.as_str(), "");
    }
    let text = text.trim().to_string();
    let audio = audio(msg);
    let files = files(msg, audio.is_some());
    if text.is_empty() && audio.is_none() && files.is_empty() {
        return None;
    }
    Some(Inbound {
        chat: chat(msg.guild_id, msg.channel_id, &msg.author),
        thread: None,
        space: msg.guild_id.map(|g| g.get().to_string()),
        sender: sender(&msg.author),
        text,
        audio,
        files,
        message_id: msg.id.get().to_string(),
        reply_to_text: msg
            .referenced_message
            .as_ref()
            .map(|r| r.content.clone())
            .filter(|c| !c.is_empty()),
        is_direct,
        mentions_bot: mentioned || replied_to_bot,
    })
}

/// Attachments that are not the voice note: images, and documents (PDF, text, anything else).
fn files(msg: &Message, has_audio: bool) -> Vec<FileAttachment> {
    msg.attachments
        .iter()
        .filter(|a| {
            let audio = a
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("audio/"));
            !(has_audio && audio)
        })
        .map(|a| FileAttachment {
            file_ref: a.url.clone(),
            kind: if a
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("image/"))
            {
                FileKind::Image
            } else {
                FileKind::Document
            },
            name: Some(a.filename.clone()),
            mime_type: a.content_type.clone(),
            size_bytes: Some(a.size.into()),
        })
        .collect()
}

fn audio(msg: &Message) -> Option<AudioAttachment> {
    let voice = msg
        .flags
        .is_some_and(|f| f.contains(MessageFlags::IS_VOICE_MESSAGE));
    msg.attachments
        .iter()
        .find(|a| {
            voice
                || a.content_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("audio/"))
        })
        .map(|a| AudioAttachment {
            file_ref: a.url.clone(),
            mime_type: a.content_type.clone(),
            size_bytes: Some(a.size.into()),
            duration_secs: a.duration_secs.map(|d| d.ceil() as u32),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(extra: &str) -> Message {
        let text = format!(
            r#"{{"id":"10","channel_id":"20","author":{{"id":"30","username":"alice","discriminator":"0","avatar":null,"global_name":"Alice"}},
            "content":"hello <@99> there","timestamp":"2026-11-23T12:00:00.000000+00:00","edited_timestamp":null,"tts":false,
            "mention_everyone":false,"mentions":[],"mention_roles":[],"attachments":[],"embeds":[],"pinned":false,"type":0{extra}}}"#
        );
        serde_json::from_str(&text).expect("fixture matches serenity's Message")
    }

    #[test]
    fn guild_and_direct_messages() {
        let m = inbound(&msg(r#","guild_id":"40""#), 99).unwrap();
        assert_eq!(m.chat, Target::new("discord", "channel:20"));
        assert_eq!(m.space.as_deref(), Some("40"));
        assert!(m.mentions_bot);
        assert!(!m.is_direct);
        assert_eq!(m.text, "hello  there");
        assert_eq!(m.sender.name.as_deref(), Some("Alice"));
        let m = inbound(&msg(""), 99).unwrap();
        assert_eq!(m.chat, Target::new("discord", "dm:30"));
        assert!(m.is_direct);
    }

    #[test]
    fn bots_are_ignored_and_voice_messages_carry_audio() {
        let bot = msg(r#","guild_id":"40""#);
        let mut bot = bot;
        bot.author.bot = true;
        assert!(inbound(&bot, 99).is_none());
        let mut v = msg(r#","flags":8192"#);
        v.attachments.push(
            serde_json::from_str(
                r#"{"id":"5","filename":"voice-message.ogg","size":1234,"url":"http://cdn/x.ogg","proxy_url":"http://cdn/x.ogg","content_type":"audio/ogg","duration_secs":3.4}"#,
            )
            .expect("fixture matches serenity's Attachment"),
        );
        let a = inbound(&v, 99).unwrap().audio.unwrap();
        assert_eq!(a.file_ref, "http://cdn/x.ogg");
        assert_eq!(a.duration_secs, Some(4));
    }
}
