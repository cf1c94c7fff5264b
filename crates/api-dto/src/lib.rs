//! The API's answers: every type a `/api/v1` route serialises, in one place, one file per
//! resource (as `routes/`). They derive `Deserialize` too, so the panel (and tests) read
//! answers into these types: a changed field is a compile error there, not an empty cell.
//! Each view is made from its store row here (`From`). `Sent` (`POST /send`), `Rendered`
//! (template previews), `FeedbackReply` and `ErrorBody` live with their logic and are
//! re-exported by `sluice_api::dto`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod dashboard;
pub mod dkim_keys;
pub mod domains;
pub mod mailbox_servers;
pub mod messages;
pub mod parsed;
pub mod providers;
pub mod rules;
pub mod settings;
pub mod smtp_credentials;
pub mod suppressions;
pub mod templates;
pub mod users;
pub mod webhook_endpoints;

/// A list and the cursor for the next page (absent on the last page).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
