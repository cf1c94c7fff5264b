//! sluice-smtp
