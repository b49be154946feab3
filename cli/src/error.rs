//! Every way a command can fail, each a sentence and an exit code (DESIGN §10).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The API answered with a problem.
    Api {
        status: u16,
        detail: String,
        /// (field, message) pairs of a 422.
        fields: Vec<(String, String)>,
    },
    /// No credentials, or the API refused them.
    NotLoggedIn(String),
    /// It can never be placed (a 422 that says so, or a dry-run `reject`).
    CannotPlace(String),
    /// Waited for it, and it ended failed or cancelled.
    Finished(String),
    TimedOut(String),
    /// Anything else: bad input, unknown names, unreachable API.
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn other(message: impl Into<String>) -> Error {
        Error::Other(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Api {
                status: 401 | 403, ..
            }
            | Error::NotLoggedIn(_) => 4,
            Error::CannotPlace(_) => 2,
            Error::Finished(_) => 3,
            Error::TimedOut(_) => 5,
            Error::Api { .. } | Error::Other(_) => 1,
        }
    }

    /// A 422 whose field errors say the request can never fit any cluster.
    pub fn into_cannot_place(self) -> Error {
        match self {
            Error::Api {
                status: 422,
                ref fields,
                ..
            } if fields.iter().any(|(field, message)| {
                field == "resources"
                    && (message.contains("capacity") || message.contains("no clusters"))
            }) =>
            {
                let why: Vec<&str> = fields.iter().map(|(_, m)| m.as_str()).collect();
                Error::CannotPlace(format!("it can never be placed: it {}", why.join("; ")))
            }
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api {
                status,
                detail,
                fields,
            } => {
                if fields.len() > 1 {
                    write!(f, "the request has {} problems:", fields.len())?;
                    for (field, message) in fields {
                        write!(f, "\n  - {field}: {message}")?;
                    }
                    Ok(())
                } else if *status == 401 {
                    write!(f, "{detail} (log in again with `hv login`)")
                } else {
                    write!(f, "{detail}")
                }
            }
            Error::NotLoggedIn(m)
            | Error::CannotPlace(m)
            | Error::Finished(m)
            | Error::TimedOut(m)
            | Error::Other(m) => write!(f, "{m}"),
        }
    }
}
