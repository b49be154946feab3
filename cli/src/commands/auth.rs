//! login, logout, whoami.

use super::Ctx;
use crate::api::{session_from, Api};
use crate::error::{Error, Result};
use crate::output::{self, str_of};
use crate::resolve;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal};

fn read_line(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::other(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(
    ctx: Ctx,
    api_url: Option<String>,
    username: Option<String>,
    password_stdin: bool,
) -> Result<()> {
    let mut config = ctx.api.config.into_inner();
    // --api, else HV_API_URL, else the last address; kept for the next commands.
    let chosen = match api_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => config.api_url(),
    };
    config.stored.api_url = Some(chosen.clone());
    let username = match username {
        Some(u) => u,
        None if password_stdin => {
            return Err(Error::other(
                "--password-stdin needs --username (standard input holds the password)",
            ))
        }
        None => read_line("Username: ")?,
    };
    if username.is_empty() {
        return Err(Error::other("a username is needed to log in"));
    }
    let password = password(password_stdin)?;
    let mut api = Api::new(config)?;
    api.base = chosen;
    let body = json!({"username": username, "password": password});
    let pair = match api.anonymous(Method::POST, "/api/v1/auth/login", &body) {
        Err(Error::Api {
            status: 401,
            detail,
            ..
        }) => return Err(Error::NotLoggedIn(detail)),
        other => other?,
    };
    let session = session_from(&username, &pair)?;
    {
        let mut config = api.config.borrow_mut();
        config.stored.session = Some(session);
        config.stored.api_url = Some(api.base.clone());
        config.stored.organization = None;
        config.save()?;
    }
    // The only organization is the obvious current one.
    if let Ok([one]) = resolve::memberships(&api).as_deref() {
        let mut config = api.config.borrow_mut();
        config.stored.organization = Some(crate::config::OrgRef {
            id: str_of(one, "id").into(),
            name: str_of(one, "name").into(),
        });
        config.save()?;
    }
    eprintln!("Logged in to {} as {username}.", api.base);
    Ok(())
}

fn password(from_stdin: bool) -> Result<String> {
    if from_stdin {
        return read_line("");
    }
    // Straight from the terminal, without echo; never from the command line (shell history).
    rpassword::prompt_password("Password: ").map_err(|e| {
        Error::other(format!(
            "cannot read the password without echo ({e}): use --password-stdin"
        ))
    })
}

pub fn register(ctx: &Ctx, username: &str, email: &str, password_stdin: bool) -> Result<()> {
    let password = password(password_stdin)?;
    let user = ctx.api.anonymous(
        Method::POST,
        "/api/v1/auth/register",
        &json!({"username": username, "email": email, "password": password}),
    )?;
    if output::structured(ctx.format, &user)? {
        return Ok(());
    }
    eprintln!("Registered {username}: now `hv login --username {username}`.");
    Ok(())
}

pub fn logout(ctx: &Ctx) -> Result<()> {
    let session = ctx.api.config.borrow().stored.session.clone();
    let Some(session) = session else {
        eprintln!("You were not logged in.");
        return Ok(());
    };
    let body = json!({"refresh_token": session.refresh_token});
    match ctx
        .api
        .anonymous(Method::POST, "/api/v1/auth/logout", &body)
    {
        // Already revoked or expired: the server has nothing left to end.
        Ok(_) | Err(Error::Api { status: 401, .. }) => {}
        Err(e) => return Err(e),
    }
    let mut config = ctx.api.config.borrow_mut();
    config.stored.session = None;
    config.stored.organization = None;
    config.save()?;
    eprintln!("Logged out.");
    Ok(())
}

pub fn whoami(ctx: &Ctx) -> Result<()> {
    let mut me = ctx.api.get("/api/v1/auth/me")?;
    let current = ctx.org().ok();
    me["current_organization"] = match &current {
        Some(org) => json!({"id": org.id, "name": org.name}),
        None => Value::Null,
    };
    me["api_url"] = json!(ctx.api.base);
    if output::structured(ctx.format, &me)? {
        return Ok(());
    }
    let who = if me["kind"] == "token" {
        format!("API token '{}'", str_of(&me, "name"))
    } else {
        str_of(&me, "username").to_string()
    };
    println!("{who} at {}", ctx.api.base);
    let orgs = me["organizations"].as_array().cloned().unwrap_or_default();
    let mut table = output::table(&["", "ORGANIZATION", "ROLE", "ID"]);
    for o in &orgs {
        let mark = if current.as_ref().is_some_and(|c| c.id == str_of(o, "id")) {
            "*"
        } else {
            ""
        };
        table.add_row(vec![
            mark,
            str_of(o, "name"),
            str_of(o, "role"),
            str_of(o, "id"),
        ]);
    }
    if orgs.is_empty() {
        println!("in no organization yet");
    } else {
        output::print_table(&table);
    }
    Ok(())
}
