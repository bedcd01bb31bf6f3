//! HTTP handlers, one module per area of the API.

pub mod admin;
pub mod analytics;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod meta;
pub mod models;
pub mod predict;
pub mod v2;
