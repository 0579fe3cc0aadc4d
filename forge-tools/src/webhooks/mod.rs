//! Webhooks: a project's admins register URLs (with a secret, the events they want and
//! optionally one tool) that are sent a signed JSON POST for each change of those events.
//!
//! Where the events come from: the platform never names a tool. Every change watchers are
//! told of (`crate::notify::queue`: pages edited, tickets changed, posts...) is announced
//! here too, as the tool's change event (`Tool::change_event`: `wiki`, `ticket`,
//! `forum_post`); tools announce events of their own with [`announce`] (the repository's
//! `push` and `tag`, from its post-push refresh). The events a webhook may choose are those
//! the installed tool kinds declare (`Tool::webhook_events`).
//!
//! How a change travels: [`announce`] queues a fan-out task when the project has webhooks;
//! the fan-out stores one [`Delivery`] per listening webhook (its id, also the
//! `X-Forge-Delivery` header, derived from the change and the webhook: idempotent) and queues
//! a delivery task each; the delivery task checks that whoever added the webhook may still
//! read what it is about (else it is logged as refused, not sent), signs the body
//! (`X-Forge-Signature-256: sha256=<hex HMAC-SHA256 of the body with the secret>`), sends it
//! through the guarded client ([`deliver`]: SSRF checks after DNS resolution and on every
//! redirect, timeouts, a capped answer) and logs the attempt under the delivery. Failures
//! worth retrying are retried by the task runner with its backoff (see [`tasks`]);
//! redelivering queues a new round of the same delivery.
//!
//! Modules: `model` (the store: `webhooks`, `webhook_deliveries`), `payload` (announcements
//! and the JSON sent), `deliver` (the HTTP client and its guard), `tasks` (announce, fan-out,
//! delivery), `admin` (what project admins do).

mod admin;
pub mod deliver;
mod model;
mod payload;
pub mod tasks;

pub use admin::{
    LOG_LIMIT, Listed, NewWebhook, create, delete, deliveries, get, known_events, list, redeliver,
};
pub use model::{
    Attempt, DELIVERIES, Delivery, Header, MAX_PER_PROJECT, MAX_SECRET_CHARS, MAX_URL_BYTES, State,
    WEBHOOKS, Webhook, ensure_indexes,
};
pub use payload::{Announcement, Artifact, Commit, Person, Push, Readers, Repository};
pub use tasks::{TASKS, announce, listening, run, signature};
