//! sluice-http
