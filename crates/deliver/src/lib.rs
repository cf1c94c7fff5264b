//! sluice-deliver
