//! One module per group of commands.

pub mod auth;
pub mod cluster;
pub mod deploy;
pub mod org;

use crate::api::Api;
use crate::config::OrgRef;
use crate::error::Result;
use crate::output::Format;

pub struct Ctx {
    pub api: Api,
    pub format: Format,
    /// `--org` / `HV_ORG`.
    pub org: Option<String>,
}

impl Ctx {
    pub fn org(&self) -> Result<OrgRef> {
        crate::resolve::current_org(&self.api, self.org.as_deref())
    }
}
