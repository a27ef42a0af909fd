// The control room's only script. Every form works without it; it adds the streamed chat,
// live logs and an overview that keeps itself current. No eval, no inline code (strict CSP).
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf"]')?.content || "";
  const $ = (s, el = document) => el.querySelector(s);

  // Chat: send without leaving the page; show the reply as it is written.
  const chat = $("#chat-log");
  const form = $("#chat-form");
  if (chat && form) {
    const agent = chat.dataset.agent;
    const pending = new Map(); // message id -> reply element
    const done = new Set(); // message ids whose final reply arrived
    const bubble = (role, text) => {
      const d = document.createElement("div");
      d.className = "msg " + role;
      d.textContent = text;
      chat.appendChild(d);
      d.scrollIntoView({ block: "end" });
      return d;
    };
    const es = new EventSource(`/chat/${encodeURIComponent(agent)}/events?after=${chat.dataset.after || 0}`);
    es.addEventListener("draft", (e) => {
      const d = JSON.parse(e.data);
      if (done.has(d.reply_to)) return;
      let el = pending.get(d.reply_to);
      if (!el) { el = bubble("assistant pending", ""); pending.set(d.reply_to, el); }
      el.textContent = d.text;
      el.setAttribute("aria-busy", "true");
    });
    es.addEventListener("messages", (e) => {
      for (const m of JSON.parse(e.data)) {
        const el = m.reply_to && pending.get(m.reply_to);
        if (el && !done.has(m.reply_to)) {
          el.textContent = m.text;
          el.className = "msg assistant";
          el.removeAttribute("aria-busy");
        } else {
          // A notice (a voice note's transcript, a task's result) goes before a reply still
          // being written, as it was sent before it.
          const d = bubble("assistant", m.text);
          const open = [...pending].find(([k]) => !done.has(k));
          if (open) chat.insertBefore(d, open[1]);
        }
        if (m.reply_to) done.add(m.reply_to);
      }
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const box = form.elements.text;
      const picker = form.elements.file;
      const file = picker && picker.files[0];
      const text = box.value.trim();
      if (!text && !file) return;
      box.value = "";
      bubble("user", file ? `📎 ${file.name}${text ? "\n" + text : ""}` : text);
      const status = $("#chat-status");
      let body = new URLSearchParams({ text }), url = form.action;
      if (file) {
        body = new FormData();
        body.append("text", text);
        body.append("file", file);
        url += "/upload";
        picker.value = "";
      }
      try {
        const headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
        const r = await fetch(url, { method: "POST", headers, body });
        const j = await r.json();
        if (!r.ok) throw new Error(j.error || r.statusText);
        if (!pending.has(j.id)) pending.set(j.id, bubble("assistant pending", "…"));
        status.textContent = "";
      } catch (err) {
        status.textContent = "Not sent: " + err.message;
        box.value = text;
      }
    });
    form.elements.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
  }

  // Live logs: new lines as they are written.
  const logs = $("#log-lines");
  if (logs) {
    const es = new EventSource("/logs/events");
    es.addEventListener("lines", (e) => {
      const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      logs.textContent += e.data + "\n";
      if (logs.textContent.length > 400000) logs.textContent = logs.textContent.slice(-300000);
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    });
  }

  // Pages marked live (the overview) refresh their content every few seconds while shown.
  const live = $("main[data-refresh]");
  if (live) {
    const every = Number(live.dataset.refresh) * 1000;
    setInterval(async () => {
      if (document.hidden || live.contains(document.activeElement) && document.activeElement !== document.body) return;
      try {
        const r = await fetch(location.href, { headers: { "X-Fragment": "main" } });
        if (r.ok) live.innerHTML = await r.text();
      } catch (_) { /* the next tick tries again */ }
    }, every);
  }
})();
