//! Requests on the control socket, one JSON object per line:
//!
//! ```text
//! {"cmd":"status"}
//! {"cmd":"mode","which":"management"|"remote-screen","mode":"allow-auto"|"allow-by-request"|"deny"}
//! {"cmd":"accept"}            {"cmd":"accept","what":"consent"|"screen-access"}
//! {"cmd":"reject"}            (same "what")
//! {"cmd":"terminate"}
//! {"cmd":"view-only","on":true|false}
//! {"cmd":"remote-session","state":"started"|"ended"}
//! {"cmd":"watch"}
//! {"cmd":"prompt"}
//! ```
//! `what` names the question being answered, so a late click cannot answer the next one;
//! without it the open question is answered. Unknown fields are errors: a typo must not
//! silently become a different request.

use std::fmt;

use super::json::{self, JsonError, Object, Value, Writer};
use crate::policy::{Mode, Question};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeKind {
    Management,
    RemoteScreen,
}

impl ModeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeKind::Management => "management",
            ModeKind::RemoteScreen => "remote-screen",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Status,
    Mode {
        which: ModeKind,
        mode: Mode,
    },
    Accept(Option<Question>),
    Reject(Option<Question>),
    Terminate,
    ViewOnly(bool),
    /// `true`: the local user entered a remote session; `false`: left it.
    RemoteSession(bool),
    Watch,
    /// A watcher that is the thin client's prompt: while it is connected, it shows the
    /// consent requests and the built-in framebuffer prompt (`--local-prompt auto`) stays off.
    Prompt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    Json(JsonError),
    Missing(&'static str),
    UnknownCommand(String),
    UnknownField(String),
    /// A field has the wrong type or value; `expected` lists what fits.
    BadValue {
        field: &'static str,
        expected: &'static str,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Json(e) => write!(f, "malformed json: {e}"),
            RequestError::Missing(field) => write!(f, "missing field {field:?}"),
            RequestError::UnknownCommand(cmd) => write!(
                f,
                "unknown command {cmd:?} (status, mode, accept, reject, terminate, view-only, \
                 remote-session, watch)"
            ),
            RequestError::UnknownField(field) => write!(f, "unknown field {field:?}"),
            RequestError::BadValue { field, expected } => {
                write!(f, "field {field:?} must be {expected}")
            }
        }
    }
}

impl From<JsonError> for RequestError {
    fn from(e: JsonError) -> Self {
        RequestError::Json(e)
    }
}

const MODES: &str = "\"allow-auto\", \"allow-by-request\" or \"deny\"";
const QUESTIONS: &str = "\"consent\" or \"screen-access\"";

fn string<'a>(o: &'a Object, field: &'static str) -> Result<Option<&'a str>, RequestError> {
    match json::get(o, field) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(RequestError::BadValue {
            field,
            expected: "a string",
        }),
    }
}

fn required<'a>(o: &'a Object, field: &'static str) -> Result<&'a str, RequestError> {
    string(o, field)?.ok_or(RequestError::Missing(field))
}

fn question(o: &Object) -> Result<Option<Question>, RequestError> {
    string(o, "what")?
        .map(|what| match what {
            "consent" => Ok(Question::Consent),
            "screen-access" => Ok(Question::ScreenAccess),
            _ => Err(RequestError::BadValue {
                field: "what",
                expected: QUESTIONS,
            }),
        })
        .transpose()
}

impl Request {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<Request, RequestError> {
        let o = json::parse_object(line)?;
        let cmd = required(&o, "cmd")?;
        let (request, fields): (Request, &[&str]) = match cmd {
            "status" => (Request::Status, &[]),
            "watch" => (Request::Watch, &[]),
            "prompt" => (Request::Prompt, &[]),
            "terminate" => (Request::Terminate, &[]),
            "accept" => (Request::Accept(question(&o)?), &["what"]),
            "reject" => (Request::Reject(question(&o)?), &["what"]),
            "mode" => {
                let which = match required(&o, "which")? {
                    "management" => ModeKind::Management,
                    "remote-screen" => ModeKind::RemoteScreen,
                    _ => {
                        return Err(RequestError::BadValue {
                            field: "which",
                            expected: "\"management\" or \"remote-screen\"",
                        });
                    }
                };
                let mode = required(&o, "mode")?
                    .parse()
                    .map_err(|()| RequestError::BadValue {
                        field: "mode",
                        expected: MODES,
                    })?;
                (Request::Mode { which, mode }, &["which", "mode"])
            }
            "view-only" => match json::get(&o, "on") {
                Some(Value::Bool(on)) => (Request::ViewOnly(*on), &["on"]),
                None => return Err(RequestError::Missing("on")),
                Some(_) => {
                    return Err(RequestError::BadValue {
                        field: "on",
                        expected: "true or false",
                    });
                }
            },
            "remote-session" => {
                let started = match required(&o, "state")? {
                    "started" => true,
                    "ended" => false,
                    _ => {
                        return Err(RequestError::BadValue {
                            field: "state",
                            expected: "\"started\" or \"ended\"",
                        });
                    }
                };
                (Request::RemoteSession(started), &["state"])
            }
            other => return Err(RequestError::UnknownCommand(other.to_owned())),
        };
        if let Some((key, _)) = o
            .iter()
            .find(|(key, _)| key != "cmd" && !fields.contains(&key.as_str()))
        {
            return Err(RequestError::UnknownField(key.clone()));
        }
        Ok(request)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Mode { .. } => "mode",
            Request::Accept(_) => "accept",
            Request::Reject(_) => "reject",
            Request::Terminate => "terminate",
            Request::ViewOnly(_) => "view-only",
            Request::RemoteSession(_) => "remote-session",
            Request::Watch => "watch",
            Request::Prompt => "prompt",
        }
    }

    /// The request as a line (what the CLI sends).
    pub fn to_line(&self) -> String {
        let w = Writer::new().str("cmd", self.name());
        match *self {
            Request::Mode { which, mode } => {
                w.str("which", which.as_str()).str("mode", mode.as_str())
            }
            Request::Accept(Some(q)) | Request::Reject(Some(q)) => w.str("what", q.as_str()),
            Request::ViewOnly(on) => w.bool("on", on),
            Request::RemoteSession(started) => {
                w.str("state", if started { "started" } else { "ended" })
            }
            _ => w,
        }
        .line()
    }

    /// The CLI words after `thinshadow` (options such as --control already removed):
    /// `status`, `mode management deny`, `accept [consent|screen-access]`, `view-only on`, ...
    pub fn from_args(args: &[&str]) -> Result<Request, String> {
        let question = |what: &str| match what {
            "consent" => Ok(Question::Consent),
            "screen-access" => Ok(Question::ScreenAccess),
            _ => Err(format!("expected consent or screen-access, not '{what}'")),
        };
        match args {
            ["status"] => Ok(Request::Status),
            ["watch"] => Ok(Request::Watch),
            ["prompt"] => Ok(Request::Prompt),
            ["terminate"] => Ok(Request::Terminate),
            ["accept"] => Ok(Request::Accept(None)),
            ["reject"] => Ok(Request::Reject(None)),
            ["accept", what] => question(what).map(|q| Request::Accept(Some(q))),
            ["reject", what] => question(what).map(|q| Request::Reject(Some(q))),
            ["view-only", "on"] => Ok(Request::ViewOnly(true)),
            ["view-only", "off"] => Ok(Request::ViewOnly(false)),
            ["remote-session", "started"] => Ok(Request::RemoteSession(true)),
            ["remote-session", "ended"] => Ok(Request::RemoteSession(false)),
            ["mode", which, mode] => {
                let which = match *which {
                    "management" => ModeKind::Management,
                    "remote-screen" => ModeKind::RemoteScreen,
                    _ => {
                        return Err(format!(
                            "expected management or remote-screen, not '{which}'"
                        ));
                    }
                };
                let mode = mode.parse().map_err(|()| {
                    format!("expected allow-auto, allow-by-request or deny, not '{mode}'")
                })?;
                Ok(Request::Mode { which, mode })
            }
            _ => Err(format!(
                "usage: status | mode management|remote-screen allow-auto|allow-by-request|deny \
                 | accept [consent|screen-access] | reject [...] | terminate | view-only on|off \
                 | remote-session started|ended | watch (got '{}')",
                args.join(" ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Request; 13] = [
        Request::Status,
        Request::Watch,
        Request::Prompt,
        Request::Terminate,
        Request::Accept(None),
        Request::Accept(Some(Question::ScreenAccess)),
        Request::Reject(Some(Question::Consent)),
        Request::ViewOnly(true),
        Request::ViewOnly(false),
        Request::RemoteSession(true),
        Request::RemoteSession(false),
        Request::Mode {
            which: ModeKind::Management,
            mode: Mode::Deny,
        },
        Request::Mode {
            which: ModeKind::RemoteScreen,
            mode: Mode::AllowByRequest,
        },
    ];

    #[test]
    fn every_request_round_trips() {
        for request in ALL {
            let line = request.to_line();
            assert!(line.ends_with('\n'));
            assert_eq!(Request::parse(line.trim_end()), Ok(request), "{line}");
        }
    }

    #[test]
    fn cli_words_map_to_requests() {
        let r = |words: &str| Request::from_args(&words.split(' ').collect::<Vec<_>>());
        assert_eq!(r("view-only on"), Ok(Request::ViewOnly(true)));
        assert_eq!(
            r("mode remote-screen deny"),
            Ok(Request::Mode {
                which: ModeKind::RemoteScreen,
                mode: Mode::Deny
            })
        );
        assert_eq!(
            r("accept screen-access"),
            Ok(Request::Accept(Some(Question::ScreenAccess)))
        );
        assert_eq!(r("remote-session ended"), Ok(Request::RemoteSession(false)));
        assert!(r("mode management maybe").unwrap_err().contains("'maybe'"));
        assert!(r("view-only").unwrap_err().starts_with("usage:"));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |line: &str| Request::parse(line).unwrap_err().to_string();
        assert_eq!(err("{}"), "missing field \"cmd\"");
        assert_eq!(err(r#"{"cmd":5}"#), "field \"cmd\" must be a string");
        assert!(err(r#"{"cmd":"reboot"}"#).starts_with("unknown command \"reboot\""));
        assert_eq!(
            err(r#"{"cmd":"mode","which":"management"}"#),
            "missing field \"mode\""
        );
        assert_eq!(
            err(r#"{"cmd":"mode","which":"management","mode":"on"}"#),
            "field \"mode\" must be \"allow-auto\", \"allow-by-request\" or \"deny\""
        );
        assert_eq!(
            err(r#"{"cmd":"view-only","on":"yes"}"#),
            "field \"on\" must be true or false"
        );
        assert_eq!(
            err(r#"{"cmd":"status","verbose":true}"#),
            "unknown field \"verbose\""
        );
        assert_eq!(
            err(r#"{"cmd":"accept","what":"everything"}"#),
            "field \"what\" must be \"consent\" or \"screen-access\""
        );
        assert!(err("status").starts_with("malformed json: expected '{'"));
    }
}
