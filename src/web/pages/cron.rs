//! Cron: the jobs with their runs, and add / edit / enable / disable / run now / remove, checked
//! exactly as `switchboard cron add` checks them (a bad field says why, beside the field).

use crate::cron::{self, JobSpec, Schedule};
use crate::gateway::api::ApiState;
use crate::store::CronJob;
use crate::web::layout::{Ctx, MsgQuery, back, notice};
use crate::web::{Page, WebError};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize, Default, Clone)]
pub struct JobForm {
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    tz: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<String>,
}

impl JobForm {
    fn of(j: &CronJob) -> Self {
        Self {
            schedule: j.schedule.clone(),
            message: j.message.clone(),
            target: j.target.clone().unwrap_or_default(),
            agent: j.agent.clone(),
            tz: j.tz.clone(),
            name: j.name.clone(),
            enabled: j.enabled.then(|| "on".into()),
        }
    }

    fn spec(&self) -> JobSpec {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        JobSpec {
            schedule: self.schedule.clone(),
            message: self.message.clone(),
            target: some(&self.target),
            agent: some(&self.agent),
            tz: some(&self.tz),
            name: some(&self.name),
        }
    }

    /// Each field's problem, by field name, as `cron add` would word it.
    fn problems(&self, s: &ApiState) -> HashMap<&'static str, String> {
        let config = s.coordinator.config();
        let mut errs = HashMap::new();
        let agent = self.agent.trim();
        if !agent.is_empty() && !config.agents.contains_key(agent) {
            errs.insert("agent", format!("No agent named `{agent}`."));
        }
        let tz = match self.tz.trim() {
            "" => config.tz().name().to_string(),
            tz => tz.to_string(),
        };
        if let Err(e) = Schedule::parse(&self.schedule, &tz) {
            if tz.parse::<chrono_tz::Tz>().is_err() {
                errs.insert("tz", e);
            } else {
                errs.insert("schedule", e);
            }
        }
        if !self.target.trim().is_empty()
            && let Err(e) = cron::check_target(config, self.target.trim())
        {
            errs.insert("target", e);
        }
        if self.message.trim().is_empty() {
            errs.insert(
                "message",
                "The job needs a message (the prompt the agent runs).".into(),
            );
        }
        errs
    }
}

fn field(
    id: &str,
    label: &str,
    help: &str,
    value: &str,
    errs: &HashMap<&'static str, String>,
    multiline: bool,
) -> Markup {
    let err = errs.get(id);
    let err_id = format!("{id}-error");
    let help_id = format!("{id}-help");
    let described = if err.is_some() {
        format!("{help_id} {err_id}")
    } else {
        help_id.clone()
    };
    html! {
        label for=(id) { (label) }
        @if multiline {
            textarea id=(id) name=(id) rows="3" aria-describedby=(described) aria-invalid=[err.map(|_| "true")] { (value) }
        } @else {
            input type="text" id=(id) name=(id) value=(value) aria-describedby=(described) aria-invalid=[err.map(|_| "true")];
        }
        small.mute id=(help_id) { (help) }
        @if let Some(e) = err { p.field-error id=(err_id) role="alert" { (e) } }
    }
}

fn form(
    s: &ApiState,
    ctx: &Ctx,
    action: &str,
    f: &JobForm,
    errs: &HashMap<&'static str, String>,
    edit: bool,
) -> Markup {
    let config = s.coordinator.config();
    let agent = if f.agent.is_empty() {
        config.coordinator().to_string()
    } else {
        f.agent.clone()
    };
    html! {
        form method="post" action=(action) novalidate {
            (ctx.csrf_field())
            @if let Some(e) = errs.get("") { p.note.error role="alert" { (e) } }
            (field("schedule", "Schedule", "5 fields (minute hour day month weekday), e.g. 0 9 * * 1-5, or @daily / @hourly", &f.schedule, errs, false))
            (field("message", "Message", "The prompt the agent runs each time", &f.message, errs, true))
            (field("target", "Post the reply to", "telegram:CHAT_ID, discord:channel:ID, local:NAME or web:NAME; empty keeps the run's output here only", &f.target, errs, false))
            label for="agent" { "Agent" }
            select #agent name="agent" aria-invalid=[errs.get("agent").map(|_| "true")] {
                @for a in config.agents.keys() { option value=(a) selected[*a == agent] { (a) } }
            }
            @if let Some(e) = errs.get("agent") { p.field-error role="alert" { (e) } }
            (field("tz", "Time zone", &format!("IANA name; empty uses {}", config.tz().name()), &f.tz, errs, false))
            (field("name", "Name", "Optional; defaults to the message's beginning", &f.name, errs, false))
            @if edit {
                label { input type="checkbox" name="enabled" checked[f.enabled.is_some()]; " Enabled" }
            }
            p { button.primary type="submit" { @if edit { "Save" } @else { "Add job" } } }
        }
    }
}

fn list(ctx: &Ctx, jobs: &[CronJob]) -> Markup {
    html! {
        @if jobs.is_empty() { p.mute { "No cron job yet." } }
        @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Job" } th scope="col" { "Schedule" } th scope="col" { "Agent → target" } th scope="col" { "Next" } th scope="col" { "Last run" } th scope="col" { span.skip { "Actions" } } } }
                tbody { @for j in jobs {
                    tr data-job=(j.id) {
                        td { a href={"/cron/" (j.id)} { "#" (j.id) " " (j.name) } }
                        td { code { (j.schedule) } " " small.mute { (j.tz) } }
                        td { (j.agent) " → " (j.target.as_deref().unwrap_or("(none)")) }
                        td { @if j.enabled { (ctx.time_opt(j.next_run)) } @else { span.mute { "disabled" } } }
                        td {
                            @if let (Some(slot), Some(st)) = (j.last_slot, &j.last_status) { (ctx.time(slot)) " " span class=(status_class(st)) { (st) } }
                            @else { span.mute { "never" } }
                        }
                        td.row {
                            (ctx.button(&format!("/cron/{}/run", j.id), "Run now", ""))
                            @if j.enabled { (ctx.button(&format!("/cron/{}/disable", j.id), "Disable", "")) }
                            @else { (ctx.button(&format!("/cron/{}/enable", j.id), "Enable", "")) }
                        }
                    }
                } }
            } }
        }
    }
}

fn status_class(s: &str) -> &'static str {
    match s {
        "ok" | "no_reply" => "ok",
        "running" | "skipped" => "mute",
        _ => "bad",
    }
}

async fn index_page(
    s: &ApiState,
    ctx: &Ctx,
    msg: Option<&str>,
    f: &JobForm,
    errs: &HashMap<&'static str, String>,
) -> Page {
    let jobs = s
        .coordinator
        .store()
        .cron_jobs(None)
        .await
        .map_err(WebError::internal)?;
    Ok(ctx.page(
        "/cron",
        "Cron",
        html! {
            (notice(msg))
            (list(ctx, &jobs))
            h2 #add { "Add a job" }
            (form(s, ctx, "/cron", f, errs, false))
        },
    ))
}

pub async fn index(State(s): State<ApiState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Page {
    index_page(
        &s,
        &ctx,
        q.msg.as_deref(),
        &JobForm::default(),
        &HashMap::new(),
    )
    .await
}

pub async fn add(State(s): State<ApiState>, ctx: Ctx, Form(f): Form<JobForm>) -> Response {
    let mut errs = f.problems(&s);
    if errs.is_empty() {
        let c = &s.coordinator;
        match cron::add_job(c.config(), c.store(), c.clock().now(), f.spec()).await {
            Ok(job) => {
                return back(
                    &format!("/cron/{}", job.id),
                    &format!("Added cron job #{}.", job.id),
                )
                .into_response();
            }
            Err(e) => {
                errs.insert("", e);
            }
        }
    }
    match index_page(&s, &ctx, None, &f, &errs).await {
        Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn job_page(
    s: &ApiState,
    ctx: &Ctx,
    id: i64,
    msg: Option<&str>,
    f: Option<&JobForm>,
    errs: &HashMap<&'static str, String>,
) -> Page {
    let store = s.coordinator.store();
    let job = store
        .cron_job(id)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found(format!("No cron job #{id}.")))?;
    let runs = store
        .cron_history(id, 50)
        .await
        .map_err(WebError::internal)?;
    let current = JobForm::of(&job);
    Ok(ctx.page(
        "/cron",
        &format!("Cron job #{id}: {}", job.name),
        html! {
            (notice(msg))
            (list(ctx, std::slice::from_ref(&job)))
            h2 { "Runs" }
            @if runs.is_empty() { p.mute { "No run yet." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Slot" } th scope="col" { "Status" } th scope="col" { "Finished" } th scope="col" { "Output" } } }
                    tbody { @for r in &runs {
                        tr.run {
                            td { (ctx.time(r.slot)) }
                            td { span class=(status_class(&r.status)) { (r.status) } @if r.attempts > 1 { " (" (r.attempts) " attempts)" } }
                            td { (ctx.time_opt(r.finished_at)) }
                            td {
                                @if let Some(o) = &r.output { pre { (o) } }
                                @if let Some(e) = &r.error { pre.bad { (e) } }
                            }
                        }
                    } }
                } }
            }
            h2 { "Edit" }
            (form(s, ctx, &format!("/cron/{id}"), f.unwrap_or(&current), errs, true))
            h2 { "Remove" }
            (ctx.button(&format!("/cron/{id}/delete"), "Remove this job and its runs", "danger"))
        },
    ))
}

pub async fn page(
    State(s): State<ApiState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Query(q): Query<MsgQuery>,
) -> Page {
    job_page(&s, &ctx, id, q.msg.as_deref(), None, &HashMap::new()).await
}

pub async fn edit(
    State(s): State<ApiState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Form<JobForm>,
) -> Response {
    let mut errs = f.problems(&s);
    if errs.is_empty() {
        let c = &s.coordinator;
        match cron::update_job(
            c.config(),
            c.store(),
            c.clock().now(),
            id,
            f.spec(),
            f.enabled.is_some(),
        )
        .await
        {
            Ok(_) => return back(&format!("/cron/{id}"), "Saved.").into_response(),
            Err(e) => {
                errs.insert("", e);
            }
        }
    }
    match job_page(&s, &ctx, id, None, Some(&f), &errs).await {
        Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn act(
    State(s): State<ApiState>,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Redirect, WebError> {
    let c = &s.coordinator;
    let now = c.clock().now();
    let msg = match action.as_str() {
        "enable" | "disable" => {
            cron::set_enabled(c.store(), now, id, action == "enable")
                .await
                .map_err(WebError::bad)?;
            format!("Job #{id} {action}d.")
        }
        "run" => cron::run_now(c, c.clock(), id)
            .await
            .map_err(WebError::bad)?,
        "delete" => {
            if !c
                .store()
                .cron_remove(id)
                .await
                .map_err(WebError::internal)?
            {
                return Err(WebError::not_found(format!("No cron job #{id}.")));
            }
            return Ok(back("/cron", &format!("Removed cron job #{id}.")));
        }
        other => {
            return Err(WebError::bad(format!(
                "`{other}` is not enable, disable, run or delete."
            )));
        }
    };
    Ok(back(&format!("/cron/{id}"), &msg))
}
