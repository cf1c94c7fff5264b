//! The API's answers: the types of `sluice-api-dto`, which the panel reads its pages
//! into, and those that live with their logic.

pub use crate::routes::send::Sent;
pub use sluice_api_dto::*;
pub use sluice_api_error::{ErrorBody, ErrorDetail};
pub use sluice_compose::render::Rendered;
pub use sluice_feedback::FeedbackReply;
