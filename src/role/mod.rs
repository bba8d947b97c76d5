//! Roles: `roles/NAME/role.toml` plus `roles/NAME/templates/`, static files in the top-level
//! `files/`. This module loads and checks them (`load`), owns the only minijinja environment
//! (`template`), and renders one host's resources into its [`Desired`] state (`render`);
//! `names` validates the names and paths roles write to; `apt_key` builds the host-side check that installs a vendor key only if it is pinned whole.
//!
//! [`Desired`]: crate::plan::desired::Desired

mod agent;
mod apt_key;
mod load;
mod names;
pub mod ports;
mod raw;
mod render;
mod resolve;
pub mod snippets;
pub(crate) mod template;

pub use load::{Role, RoleSet};
pub use render::{Renderer, role_names_for};
pub use template::systemd_env;
