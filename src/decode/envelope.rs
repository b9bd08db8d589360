//! CloudWatch Logs envelopes from simd-json's tape: keys matched by name in
//! any order, unknown keys ignored, strings borrowed from the buffer.

use simd_json::{Node, StaticNode};

use super::sink::Envelope;

/// What kind of envelope a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageType {
    Data,
    Control,
}

/// A parsed envelope: its metadata and the tape range of `logEvents`.
pub(crate) struct Parsed<'a> {
    pub(crate) kind: MessageType,
    pub(crate) envelope: Envelope<'a>,
    /// Index of the `logEvents` array node in the tape.
    pub(crate) events_at: usize,
}

/// One event's fields, before the id is known to be a string.
pub(crate) struct RawEvent<'a> {
    pub(crate) id: Id<'a>,
    pub(crate) timestamp: i64,
    pub(crate) message: &'a str,
}

/// An event id: a string, or (from some emulators) a JSON integer.
pub(crate) enum Id<'a> {
    Str(&'a str),
    Int(u64),
}

/// Number of tape nodes the value at `i` takes, itself included.
pub(crate) fn node_len(tape: &[Node<'_>], i: usize) -> usize {
    match tape.get(i) {
        Some(Node::Object { count, .. } | Node::Array { count, .. }) => {
            count.saturating_add(1)
        }
        _ => 1,
    }
}

fn type_name(node: Option<&Node<'_>>) -> &'static str {
    match node {
        Some(Node::String(_)) => "a string",
        Some(Node::Object { .. }) => "an object",
        Some(Node::Array { .. }) => "an array",
        Some(Node::Static(StaticNode::Null)) => "null",
        Some(Node::Static(StaticNode::Bool(_))) => "a boolean",
        Some(Node::Static(_)) => "a number",
        None => "missing",
    }
}

fn string<'a>(
    tape: &[Node<'a>],
    i: usize,
    key: &str,
) -> Result<&'a str, String> {
    match tape.get(i) {
        Some(Node::String(s)) => Ok(s),
        other => Err(format!("`{key}` is {}, not a string", type_name(other))),
    }
}

/// Reads the envelope object at the start of `tape`.
pub(crate) fn parse<'a>(tape: &[Node<'a>]) -> Result<Parsed<'a>, String> {
    let Some(&Node::Object { len, .. }) = tape.first() else {
        return Err(format!(
            "the document is {}, not an object",
            type_name(tape.first())
        ));
    };
    let mut kind = None;
    let mut env = Envelope::default();
    let mut events_at = None;
    let mut i = 1;
    for _ in 0..len {
        let Some(Node::String(key)) = tape.get(i) else {
            return Err("malformed tape".into());
        };
        let v = i + 1;
        match *key {
            "messageType" => {
                kind = Some(match string(tape, v, key)? {
                    "DATA_MESSAGE" => MessageType::Data,
                    "CONTROL_MESSAGE" => MessageType::Control,
                    other => {
                        return Err(format!("unknown messageType {other:?}"))
                    }
                })
            }
            "owner" => env.owner = string(tape, v, key)?,
            "logGroup" => env.log_group = string(tape, v, key)?,
            "logStream" => env.log_stream = string(tape, v, key)?,
            "policyLevel" => {
                env.policy_level = match tape.get(v) {
                    Some(Node::Static(StaticNode::Null)) => None,
                    _ => Some(string(tape, v, key)?),
                }
            }
            "logEvents" => match tape.get(v) {
                Some(Node::Array { .. }) => events_at = Some(v),
                other => {
                    return Err(format!(
                        "`logEvents` is {}, not an array",
                        type_name(other)
                    ))
                }
            },
            _ => {}
        }
        i = v + node_len(tape, v);
    }
    let Some(events_at) = events_at else {
        return Err("`logEvents` is missing".into());
    };
    Ok(Parsed {
        kind: kind.unwrap_or(MessageType::Data),
        envelope: env,
        events_at,
    })
}

/// Iterates over the events of the `logEvents` array at `at`, yielding
/// each event or the reason it is malformed.
pub(crate) fn events<'t, 'a>(
    tape: &'t [Node<'a>],
    at: usize,
) -> impl Iterator<Item = Result<RawEvent<'a>, String>> + 't {
    let len = match tape.get(at) {
        Some(Node::Array { len, .. }) => *len,
        _ => 0,
    };
    let mut i = at + 1;
    (0..len).map(move |n| {
        let here = i;
        i += node_len(tape, here);
        event(tape, here).map_err(|e| format!("logEvents[{n}]: {e}"))
    })
}

fn event<'a>(tape: &[Node<'a>], at: usize) -> Result<RawEvent<'a>, String> {
    let Some(&Node::Object { len, .. }) = tape.get(at) else {
        return Err(format!(
            "the event is {}, not an object",
            type_name(tape.get(at))
        ));
    };
    let (mut id, mut ts, mut msg) = (None, None, None);
    let mut i = at + 1;
    for _ in 0..len {
        let Some(Node::String(key)) = tape.get(i) else {
            return Err("malformed tape".into());
        };
        let v = i + 1;
        match *key {
            "id" => {
                id = Some(match tape.get(v) {
                    Some(Node::String(s)) => Id::Str(s),
                    Some(Node::Static(StaticNode::U64(n))) => Id::Int(*n),
                    Some(Node::Static(StaticNode::I64(n))) => {
                        Id::Int(u64::try_from(*n).map_err(|_| {
                            "`id` is a negative number".to_string()
                        })?)
                    }
                    Some(Node::Static(StaticNode::F64(_))) => {
                        return Err("`id` is a number too large to keep \
                                    exactly; write it as a string"
                            .into())
                    }
                    other => {
                        return Err(format!(
                            "`id` is {}, not a string",
                            type_name(other)
                        ))
                    }
                })
            }
            "timestamp" => {
                ts = Some(match tape.get(v) {
                    Some(Node::Static(StaticNode::I64(n))) => *n,
                    Some(Node::Static(StaticNode::U64(n))) => {
                        i64::try_from(*n).map_err(|_| {
                            "`timestamp` is out of range".to_string()
                        })?
                    }
                    other => {
                        return Err(format!(
                            "`timestamp` is {}, not an integer",
                            type_name(other)
                        ))
                    }
                })
            }
            "message" => msg = Some(string(tape, v, key)?),
            _ => {}
        }
        i = v + node_len(tape, v);
    }
    match (id, ts, msg) {
        (Some(id), Some(timestamp), Some(message)) => {
            Ok(RawEvent { id, timestamp, message })
        }
        (None, _, _) => Err("`id` is missing".into()),
        (_, None, _) => Err("`timestamp` is missing".into()),
        (_, _, None) => Err("`message` is missing".into()),
    }
}
