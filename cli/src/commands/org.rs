//! org list/create/use/join/members/invite, and token create/list/revoke.

use super::Ctx;
use crate::config::OrgRef;
use crate::error::{Error, Result};
use crate::output::{self, age, str_of, when};
use crate::resolve;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Your organizations and your role in each.
    List,
    /// Create one (you become its admin; it becomes the current one).
    Create { name: String },
    /// Choose the organization later commands act in.
    Use { organization: String },
    /// Join with an invite code.
    Join { code: String },
    /// Members of the current organization.
    Members,
    /// Make an invite code for the current organization (admins).
    Invite {
        /// admin, developer or viewer (default developer).
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        expires_in_hours: Option<i64>,
        #[arg(long)]
        max_uses: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token for CI (shown once).
    Create {
        name: String,
        /// developer or viewer (default developer).
        #[arg(long, default_value = "developer")]
        role: String,
        /// 1-365 (default 90).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// The current organization's tokens (never their secrets).
    List,
    /// Revoke a token by name or id: its next request is refused.
    Revoke { token: String },
}

fn remember(ctx: &Ctx, org: OrgRef) -> Result<()> {
    let mut config = ctx.api.config.borrow_mut();
    config.stored.organization = Some(org);
    config.save()
}

pub fn org(ctx: &Ctx, command: OrgCommand) -> Result<()> {
    match command {
        OrgCommand::List => list(ctx),
        OrgCommand::Create { name } => {
            let created = ctx
                .api
                .post("/api/v1/organizations", &json!({"name": name}))?;
            remember(
                ctx,
                OrgRef {
                    id: str_of(&created, "id").into(),
                    name: str_of(&created, "name").into(),
                },
            )?;
            if output::structured(ctx.format, &created)? {
                return Ok(());
            }
            let mut table = output::table(&["NAME", "ID", "ROLE", "INVITE CODE"]);
            table.add_row(vec![
                str_of(&created, "name"),
                str_of(&created, "id"),
                str_of(&created, "role"),
                str_of(&created, "invite_code"),
            ]);
            output::print_table(&table);
            eprintln!("Now using {name}. Share the invite code to let people join as developers.");
            Ok(())
        }
        OrgCommand::Use { organization } => {
            let org = resolve::organization(&ctx.api, &organization)?;
            if ctx.api.uses_api_token() {
                return Err(Error::other(
                    "HV_TOKEN is set: an API token always acts in its own organization",
                ));
            }
            eprintln!("Now using {} ({}).", org.name, org.id);
            remember(ctx, org)
        }
        OrgCommand::Join { code } => {
            let joined = ctx
                .api
                .post("/api/v1/organizations/join", &json!({"invite_code": code}))?;
            let org = &joined["organization"];
            let had_none = ctx.api.config.borrow().stored.organization.is_none();
            if had_none {
                remember(
                    ctx,
                    OrgRef {
                        id: str_of(org, "id").into(),
                        name: str_of(org, "name").into(),
                    },
                )?;
            }
            if output::structured(ctx.format, &joined)? {
                return Ok(());
            }
            println!(
                "Joined {} as {}.",
                str_of(org, "name"),
                str_of(&joined, "role")
            );
            Ok(())
        }
        OrgCommand::Members => {
            let org = ctx.org()?;
            let members = ctx
                .api
                .get(&format!("/api/v1/organizations/{}/members", org.id))?;
            if output::structured(ctx.format, &members)? {
                return Ok(());
            }
            let mut table = output::table(&["USERNAME", "ROLE", "JOINED", "USER ID"]);
            for m in members.as_array().into_iter().flatten() {
                table.add_row(vec![
                    str_of(m, "username").to_string(),
                    str_of(m, "role").to_string(),
                    age(&m["joined_at"]),
                    str_of(m, "user_id").to_string(),
                ]);
            }
            output::print_table(&table);
            Ok(())
        }
        OrgCommand::Invite {
            role,
            expires_in_hours,
            max_uses,
        } => {
            let org = ctx.org()?;
            let invite = ctx.api.post(
                &format!("/api/v1/organizations/{}/invites", org.id),
                &json!({"role": role, "expires_in_hours": expires_in_hours, "max_uses": max_uses}),
            )?;
            if output::structured(ctx.format, &invite)? {
                return Ok(());
            }
            println!("{}", str_of(&invite, "code"));
            eprintln!(
                "Invite to {} as {}, until {}: `hv org join {}`",
                org.name,
                str_of(&invite, "role"),
                when(&invite["expires_at"]),
                str_of(&invite, "code")
            );
            Ok(())
        }
    }
}

fn list(ctx: &Ctx) -> Result<()> {
    // An API token may not list organizations; its one is in /auth/me.
    let orgs = if ctx.api.uses_api_token() {
        Value::Array(resolve::memberships(&ctx.api)?)
    } else {
        ctx.api.get("/api/v1/organizations")?
    };
    if output::structured(ctx.format, &orgs)? {
        return Ok(());
    }
    let current = ctx.org().ok();
    let mut table = output::table(&["", "NAME", "ROLE", "MEMBERS", "ID"]);
    for o in orgs.as_array().into_iter().flatten() {
        let mark = if current.as_ref().is_some_and(|c| c.id == str_of(o, "id")) {
            "*"
        } else {
            ""
        };
        table.add_row(vec![
            mark.to_string(),
            str_of(o, "name").to_string(),
            str_of(o, "role").to_string(),
            o["member_count"]
                .as_i64()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            str_of(o, "id").to_string(),
        ]);
    }
    output::print_table(&table);
    Ok(())
}

pub fn token(ctx: &Ctx, command: TokenCommand) -> Result<()> {
    let org = ctx.org()?;
    let path = format!("/api/v1/organizations/{}/tokens", org.id);
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
        } => {
            let created = ctx.api.post(
                &path,
                &json!({"name": name, "role": role, "expires_in_days": expires_in_days}),
            )?;
            if output::structured(ctx.format, &created)? {
                return Ok(());
            }
            println!("{}", str_of(&created, "token"));
            eprintln!(
                "Token '{name}' ({}) for {} until {}. It is shown only now: use it as HV_TOKEN.",
                str_of(&created, "role"),
                org.name,
                when(&created["expires_at"])
            );
            Ok(())
        }
        TokenCommand::List => {
            let tokens = ctx.api.get(&path)?;
            if output::structured(ctx.format, &tokens)? {
                return Ok(());
            }
            let mut table = output::table(&["NAME", "ROLE", "EXPIRES", "LAST USED", "STATE", "ID"]);
            for t in tokens.as_array().into_iter().flatten() {
                let state = if t["revoked_at"].is_null() {
                    "active"
                } else {
                    "revoked"
                };
                table.add_row(vec![
                    str_of(t, "name").to_string(),
                    str_of(t, "role").to_string(),
                    age(&t["expires_at"]),
                    if t["last_used_at"].is_null() {
                        "never".into()
                    } else {
                        age(&t["last_used_at"])
                    },
                    state.to_string(),
                    str_of(t, "id").to_string(),
                ]);
            }
            output::print_table(&table);
            Ok(())
        }
        TokenCommand::Revoke { token } => {
            let tokens = ctx.api.get(&path)?;
            let matches: Vec<&Value> = tokens
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["revoked_at"].is_null())
                .filter(|t| str_of(t, "id") == token || str_of(t, "name") == token)
                .collect();
            let id = match matches.as_slice() {
                [one] => str_of(one, "id").to_string(),
                [] => {
                    return Err(Error::other(format!(
                        "there is no active token called '{token}' in {} (see `hv token list`)",
                        org.name
                    )))
                }
                many => {
                    return Err(Error::other(format!(
                        "'{token}' names {} tokens; revoke one by id: {}",
                        many.len(),
                        many.iter()
                            .map(|t| str_of(t, "id"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            };
            ctx.api.delete(&format!("{path}/{id}"))?;
            eprintln!("Revoked token '{token}'.");
            Ok(())
        }
    }
}
