//! The credentials file: the API address, the session (refresh and access tokens) and the
//! current organization, kept 0600 under the user's config directory.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::PathBuf;

pub const DEFAULT_API: &str = "http://127.0.0.1:3000";

#[derive(Serialize, Deserialize, Default, Clone)]
pub struct Stored {
    pub api_url: Option<String>,
    pub session: Option<Session>,
    pub organization: Option<OrgRef>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Session {
    pub username: String,
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: i64,
    pub refresh_token: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct OrgRef {
    pub id: String,
    pub name: String,
}

pub struct ConfigFile {
    path: PathBuf,
    pub stored: Stored,
}

/// `HV_CONFIG_DIR` wins (tests, several identities); else the platform's config directory.
fn dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("HV_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "hypervisor", "hv")
        .map(|p| p.config_dir().to_path_buf())
        .ok_or_else(|| {
            Error::other("cannot find a config directory: set HV_CONFIG_DIR to choose one")
        })
}

impl ConfigFile {
    pub fn load() -> Result<ConfigFile> {
        let path = dir()?.join("credentials.json");
        let stored = match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::other(format!(
                    "{} is not a credentials file hv wrote ({e}): delete it and log in again",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(Error::other(format!("cannot read {}: {e}", path.display()))),
        };
        Ok(ConfigFile { path, stored })
    }

    /// Writes a temporary 0600 file and renames it over the old one, so a crash never leaves
    /// half a file and the secret is never readable by others, even for a moment.
    pub fn save(&self) -> Result<()> {
        let fail =
            |e: std::io::Error| Error::other(format!("cannot write {}: {e}", self.path.display()));
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent).map_err(fail)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(fail)?;
        }
        let text = serde_json::to_string_pretty(&self.stored)
            .map_err(|e| Error::other(format!("cannot encode the credentials: {e}")))?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        fs::rename(&tmp, &self.path).map_err(fail)
    }

    /// `HV_API_URL`, else the address of the last login, else the local stack's.
    pub fn api_url(&self) -> String {
        std::env::var("HV_API_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.stored.api_url.clone())
            .unwrap_or_else(|| DEFAULT_API.to_string())
            .trim_end_matches('/')
            .to_string()
    }
}
