//! Telegram updates → our inbound messages. Edited messages, service messages and messages from
//! bots are not conversation and are dropped here.

use crate::BotInfo;
use switchboard_channel::{
    AudioAttachment, FileAttachment, FileKind, Inbound, Press, SenderInfo, Target,
};
use teloxide::types::{Message, MessageKind, Update, UpdateKind};

pub(crate) fn inbound(update: &Update, me: &BotInfo) -> Option<Inbound> {
    let UpdateKind::Message(msg) = &update.kind else {
        return None; // edits, reactions, callbacks, …
    };
    message(msg, me)
}

/// The album a message belongs to (several photos sent at once arrive as one message each).
pub(crate) fn media_group(update: &Update) -> Option<&str> {
    match &update.kind {
        UpdateKind::Message(m) => m.media_group_id().map(|g| g.0.as_str()),
        _ => None,
    }
}

/// Folds the messages of one album (same chat and media group, in one page of updates) into the
/// first: every file, and the caption whichever of them carries it.
pub(crate) fn merge_albums(page: Vec<(Option<String>, Inbound)>) -> Vec<Inbound> {
    let mut out: Vec<(Option<String>, Inbound)> = Vec::with_capacity(page.len());
    for (group, m) in page {
        if let Some(g) = &group
            && let Some((_, first)) = out
                .iter_mut()
                .find(|(og, om)| og.as_ref() == Some(g) && om.chat == m.chat)
        {
            first.files.extend(m.files);
            if first.text.trim().is_empty() {
                first.text = m.text;
            }
            continue;
        }
        out.push((group, m));
    }
    out.into_iter().map(|(_, m)| m).collect()
}

/// A pressed inline-keyboard button → our [`Press`], with the callback query's id (which the
/// answer must name). Presses on messages too old for Telegram to show are dropped.
pub(crate) fn press(update: &Update) -> Option<(Press, String)> {
    let UpdateKind::CallbackQuery(q) = &update.kind else {
        return None;
    };
    let msg = q.message.as_ref()?;
    let name = display_name(&q.from);
    Some((
        Press {
            chat: Target::new("telegram", msg.chat().id.0.to_string()),
            sender: SenderInfo {
                id: q.from.id.0.to_string(),
                name: Some(name),
            },
            message_id: msg.id().0.to_string(),
            data: q.data.clone()?,
        },
        q.id.0.clone(),
    ))
}

fn display_name(u: &teloxide::types::User) -> String {
    match &u.last_name {
        Some(l) => format!("{} {l}", u.first_name),
        None => u.first_name.clone(),
    }
}

fn message(msg: &Message, me: &BotInfo) -> Option<Inbound> {
    if !matches!(msg.kind, MessageKind::Common(_)) {
        return None; // joins, pins, topic changes, …
    }
    let from = msg.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let audio = audio(msg);
    let files = files(msg);
    let text = msg.text().or(msg.caption()).unwrap_or_default();
    if text.trim().is_empty() && audio.is_none() && files.is_empty() {
        return None; // stickers, photos without caption, …
    }
    let is_direct = msg.chat.is_private();
    // `/new@other_bot` in a group is another bot's command: not ours to run, nor to answer.
    let (text, commanded) = match command_address(text) {
        Some((command, bot, rest)) if bot.eq_ignore_ascii_case(&me.username) => {
            (format!("{command}{rest}"), true)
        }
        Some(_) => return None,
        None => (text.to_string(), false),
    };
    let text = text.as_str();
    let mention = format!("@{}", me.username);
    let mentioned =
        !me.username.is_empty() && text.to_lowercase().contains(&mention.to_lowercase());
    let replied_to_bot = msg
        .reply_to_message()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.id.0 == me.id);
    let reply_to_text = msg
        .reply_to_message()
        .and_then(|r| r.text().or(r.caption()))
        .map(str::to_string);
    let name = display_name(from);
    Some(Inbound {
        chat: Target::new("telegram", msg.chat.id.0.to_string()),
        thread: msg
            .is_topic_message
            .then(|| msg.thread_id.map(|t| t.0.0.to_string()))
            .flatten(),
        space: None,
        sender: SenderInfo {
            id: from.id.0.to_string(),
            name: Some(name),
        },
        text: strip_mention(text, &mention),
        audio,
        files,
        message_id: msg.id.0.to_string(),
        reply_to_text,
        is_direct,
        mentions_bot: mentioned || replied_to_bot || commanded,
    })
}

/// `/cmd@bot rest` → (`/cmd`, `bot`, ` rest`); `None` when the text is not an addressed command.
fn command_address(text: &str) -> Option<(&str, &str, &str)> {
    let t = text.trim_start();
    if !t.starts_with('/') {
        return None;
    }
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    let (head, rest) = t.split_at(end);
    let (command, bot) = head.split_once('@')?;
    (command.len() > 1 && !bot.is_empty()).then_some((command, bot, rest))
}

/// "@jarvis_bot what's up" → "what's up" (a leading mention only; others are content).
fn strip_mention(text: &str, mention: &str) -> String {
    let t = text.trim_start();
    match t.get(..mention.len()) {
        Some(head) if mention.len() > 1 && head.eq_ignore_ascii_case(mention) => {
            t[mention.len()..].trim_start().to_string()
        }
        _ => text.to_string(),
    }
}

/// Bots may download files up to 20 MB.
const DOWNLOAD_MAX: u32 = 20 * 1024 * 1024;

/// A photo (its largest size a bot may download) or a document.
fn files(msg: &Message) -> Vec<FileAttachment> {
    let mut out = Vec::new();
    if let Some(sizes) = msg.photo() {
        let best = sizes
            .iter()
            .filter(|p| p.file.size <= DOWNLOAD_MAX)
            .max_by_key(|p| p.width * p.height)
            .or_else(|| sizes.iter().min_by_key(|p| p.file.size));
        if let Some(p) = best {
            out.push(FileAttachment {
                file_ref: p.file.id.0.clone(),
                kind: FileKind::Image,
                name: Some(format!("photo-{}.jpg", msg.id.0)),
                mime_type: Some("image/jpeg".into()),
                size_bytes: Some(p.file.size.into()),
            });
        }
    }
    if let Some(d) = msg.document() {
        let mime = d.mime_type.as_ref().map(ToString::to_string);
        let kind = if mime.as_deref().is_some_and(|m| m.starts_with("image/")) {
            FileKind::Image
        } else {
            FileKind::Document
        };
        out.push(FileAttachment {
            file_ref: d.file.id.0.clone(),
            kind,
            name: d.file_name.clone(),
            mime_type: mime,
            size_bytes: Some(d.file.size.into()),
        });
    }
    out
}

fn audio(msg: &Message) -> Option<AudioAttachment> {
    if let Some(v) = msg.voice() {
        return Some(AudioAttachment {
            file_ref: v.file.id.0.clone(),
            mime_type: v
                .mime_type
                .as_ref()
                .map(ToString::to_string)
                .or(Some("audio/ogg".into())),
            size_bytes: Some(v.file.size.into()),
            duration_secs: Some(v.duration.seconds()),
        });
    }
    if let Some(a) = msg.audio() {
        return Some(AudioAttachment {
            file_ref: a.file.id.0.clone(),
            mime_type: a.mime_type.as_ref().map(ToString::to_string),
            size_bytes: Some(a.file.size.into()),
            duration_secs: Some(a.duration.seconds()),
        });
    }
    msg.video_note().map(|v| AudioAttachment {
        file_ref: v.file.id.0.clone(),
        mime_type: Some("video/mp4".into()),
        size_bytes: Some(v.file.size.into()),
        duration_secs: Some(v.duration.seconds()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> BotInfo {
        BotInfo {
            id: 999,
            username: "jarvis_bot".into(),
        }
    }

    fn update(json: &str) -> Update {
        serde_json::from_str(json).expect("fixture matches teloxide's Update")
    }

    #[test]
    fn direct_text_message() {
        let u = update(
            r#"{"update_id":1,"message":{"message_id":5,"date":1700000000,
            "chat":{"id":111,"type":"private","first_name":"Alice"},
            "from":{"id":111,"is_bot":false,"first_name":"Alice","last_name":"Smith"},"text":"hello"}}"#,
        );
        let m = inbound(&u, &me()).unwrap();
        assert_eq!(m.chat, Target::new("telegram", "111"));
        assert_eq!(m.text, "hello");
        assert_eq!(m.message_id, "5");
        assert!(m.is_direct);
        assert_eq!(m.sender.name.as_deref(), Some("Alice Smith"));
    }

    #[test]
    fn forum_topic_mention_and_reply_to_bot() {
        let u = update(
            r#"{"update_id":2,"message":{"message_id":6,"date":1700000000,"message_thread_id":7,"is_topic_message":true,
            "chat":{"id":-100123,"type":"supergroup","title":"Team","is_forum":true},
            "from":{"id":222,"is_bot":false,"first_name":"Bob"},"text":"@Jarvis_Bot deploy?"}}"#,
        );
        let m = inbound(&u, &me()).unwrap();
        assert_eq!(m.thread.as_deref(), Some("7"));
        assert!(!m.is_direct);
        assert!(m.mentions_bot);
        assert_eq!(m.text, "deploy?");
        let u = update(
            r#"{"update_id":3,"message":{"message_id":8,"date":1700000000,
            "chat":{"id":-100123,"type":"supergroup","title":"Team"},
            "from":{"id":222,"is_bot":false,"first_name":"Bob"},"text":"and tomorrow?",
            "reply_to_message":{"message_id":4,"date":1700000000,
              "chat":{"id":-100123,"type":"supergroup","title":"Team"},
              "from":{"id":999,"is_bot":true,"first_name":"Jarvis","username":"jarvis_bot"},"text":"Sunny today."}}}"#,
        );
        let m = inbound(&u, &me()).unwrap();
        assert!(m.mentions_bot);
        assert_eq!(m.reply_to_text.as_deref(), Some("Sunny today."));
        assert_eq!(m.thread, None);
    }

    #[test]
    fn bots_edits_and_service_messages_are_ignored() {
        let bot = update(
            r#"{"update_id":4,"message":{"message_id":9,"date":1700000000,
            "chat":{"id":111,"type":"private","first_name":"A"},
            "from":{"id":5,"is_bot":true,"first_name":"Other"},"text":"hi"}}"#,
        );
        assert!(inbound(&bot, &me()).is_none());
        let edit = update(
            r#"{"update_id":5,"edited_message":{"message_id":9,"date":1700000000,"edit_date":1700000001,
            "chat":{"id":111,"type":"private","first_name":"A"},
            "from":{"id":111,"is_bot":false,"first_name":"A"},"text":"hi!"}}"#,
        );
        assert!(inbound(&edit, &me()).is_none());
        let join = update(
            r#"{"update_id":6,"message":{"message_id":10,"date":1700000000,
            "chat":{"id":-5,"type":"group","title":"G"},
            "from":{"id":111,"is_bot":false,"first_name":"A"},
            "new_chat_members":[{"id":112,"is_bot":false,"first_name":"B"}]}}"#,
        );
        assert!(inbound(&join, &me()).is_none());
    }

    #[test]
    fn voice_note_becomes_an_audio_attachment() {
        let u = update(
            r#"{"update_id":7,"message":{"message_id":11,"date":1700000000,
            "chat":{"id":111,"type":"private","first_name":"A"},
            "from":{"id":111,"is_bot":false,"first_name":"A"},
            "voice":{"file_id":"VOICE1","file_unique_id":"u1","duration":4,"mime_type":"audio/ogg","file_size":12345}}}"#,
        );
        let m = inbound(&u, &me()).unwrap();
        let a = m.audio.unwrap();
        assert_eq!(a.file_ref, "VOICE1");
        assert_eq!(a.size_bytes, Some(12345));
        assert_eq!(a.duration_secs, Some(4));
        assert_eq!(m.text, "");
    }

    #[test]
    fn commands_addressed_to_another_bot_are_not_ours() {
        let group = |text: &str| {
            update(&format!(
                r#"{{"update_id":1,"message":{{"message_id":5,"date":1700000000,
                "chat":{{"id":-100,"type":"supergroup","title":"g"}},
                "from":{{"id":7,"is_bot":false,"first_name":"A"}},"text":"{text}"}}}}"#
            ))
        };
        assert!(inbound(&group("/new@other_bot"), &me()).is_none());
        assert!(inbound(&group("/task@OtherBot do it"), &me()).is_none());
        let ours = inbound(&group("/new@Jarvis_Bot"), &me()).unwrap();
        assert_eq!(ours.text, "/new");
        assert!(ours.mentions_bot);
        let ours = inbound(&group("/task@jarvis_bot clu build it"), &me()).unwrap();
        assert_eq!(ours.text, "/task clu build it");
        // Not commands: an e-mail address, a path.
        assert_eq!(
            inbound(&group("mail me@example.com"), &me()).unwrap().text,
            "mail me@example.com"
        );
        assert_eq!(inbound(&group("/etc@home is a path"), &me()), None);
    }
}
