//! Where decoded events go.

use crate::error::Error;
use crate::map::scan::{Prescanned, Scanned};

/// The envelope metadata shared by all events of one CloudWatch Logs
/// subscription record. Strings borrow the inflated member buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope<'a> {
    /// The 12-digit AWS account id that owns the log group.
    pub owner: &'a str,
    /// The log group name.
    pub log_group: &'a str,
    /// The log stream name.
    pub log_stream: &'a str,
    /// `policyLevel`, present for account-level subscription policies.
    pub policy_level: Option<&'a str>,
}

/// One log event as decoded, borrowing the inflated buffer.
///
/// For the "lines" variant (Firehose message extraction) there is no
/// envelope: `envelope`, `id` and `timestamp` are `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEvent<'a> {
    /// The object's name (S3 key or file path).
    pub object: &'a str,
    /// Index from 0 of the gzip member (or, for plain JSON envelopes, of
    /// the JSON document) that holds the event; `None` for lines.
    pub member: Option<u64>,
    /// The envelope metadata, if the variant has envelopes.
    pub envelope: Option<&'a Envelope<'a>>,
    /// The event id: decimal digits, kept as a string.
    pub id: Option<&'a str>,
    /// Event time in epoch milliseconds (UTC).
    pub timestamp: Option<i64>,
    /// The log message, unescaped.
    pub message: &'a str,
}

/// Receives decoded events and the errors for input that could not be
/// decoded. Returning `Err` stops decoding of the object at once.
pub trait EventSink {
    /// The error that stops decoding.
    type Error;

    /// Called once for every event, in input order.
    ///
    /// # Errors
    ///
    /// An error stops decoding and is returned by the decoder.
    fn event(&mut self, event: &LogEvent<'_>) -> Result<(), Self::Error>;

    /// Called for every piece of input that was rejected. Decoding goes on
    /// after it where the framing allows.
    ///
    /// # Errors
    ///
    /// An error stops decoding and is returned by the decoder.
    fn reject(&mut self, error: Error) -> Result<(), Self::Error>;

    /// Whether this sink takes messages in their escaped form
    /// ([`EventSink::escaped_event`]): the one-pass path of `convert`.
    #[doc(hidden)]
    fn wants_escaped(&self) -> bool {
        false
    }

    /// Called instead of [`EventSink::event`] when
    /// [`EventSink::wants_escaped`] is true and the envelope took the
    /// one-pass path: `escaped` is the body of the message's JSON string,
    /// not unescaped (`event.message` is empty), and `quotes_only` tells
    /// whether its every escape is `\"` (and it has one). The default
    /// unescapes it and calls [`EventSink::event`].
    ///
    /// # Errors
    ///
    /// As [`EventSink::event`].
    #[doc(hidden)]
    fn escaped_event(
        &mut self,
        event: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
    ) -> Result<(), Self::Error> {
        let _ = quotes_only;
        let mut buf = Vec::new();
        super::onepass::unescape(escaped.as_bytes(), &mut buf);
        let message = String::from_utf8_lossy(&buf);
        self.event(&LogEvent { message: &message, ..*event })
    }

    /// On the one-pass path, the message whose body starts `body` (which
    /// runs on to the envelope's end), scanned before its event is
    /// emitted, into `pre`: the body's length, whether its every escape
    /// is `\"`, and its number in `pre`; or `None` (the default), and the
    /// envelope reader finds the message's end itself. Where it is read,
    /// the event comes to [`EventSink::scanned_event`] with that scan.
    #[doc(hidden)]
    fn prescan<'a>(
        &mut self,
        body: &'a str,
        pre: &mut Prescanned<'a>,
    ) -> Option<(usize, bool, u32)> {
        let _ = (body, pre);
        None
    }

    /// [`EventSink::escaped_event`] of a message [`EventSink::prescan`]
    /// read, with that scan. The default ignores it.
    ///
    /// # Errors
    ///
    /// As [`EventSink::event`].
    #[doc(hidden)]
    fn scanned_event(
        &mut self,
        event: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
        scanned: Scanned<'_, '_>,
    ) -> Result<(), Self::Error> {
        let _ = scanned;
        self.escaped_event(event, escaped, quotes_only)
    }

    /// Called now and then as the decoder reads the object, with how many
    /// bytes of its input (the object as stored) it has consumed so far,
    /// rising: before each member, JSON document or line once
    /// [`PROGRESS_STEP`] bytes have passed since the last call. Not called
    /// at the object's end, which the caller counts itself (the object's
    /// length less the last figure). For a progress display; the default
    /// does nothing.
    fn progress(&mut self, consumed: u64) {
        let _ = consumed;
    }
}

/// How far apart, in input bytes, [`EventSink::progress`] is called.
pub const PROGRESS_STEP: u64 = 256 * 1024;

impl<S: EventSink + ?Sized> EventSink for &mut S {
    type Error = S::Error;
    fn event(&mut self, event: &LogEvent<'_>) -> Result<(), Self::Error> {
        (**self).event(event)
    }
    fn reject(&mut self, error: Error) -> Result<(), Self::Error> {
        (**self).reject(error)
    }
    fn wants_escaped(&self) -> bool {
        (**self).wants_escaped()
    }
    fn escaped_event(
        &mut self,
        event: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
    ) -> Result<(), Self::Error> {
        (**self).escaped_event(event, escaped, quotes_only)
    }
    fn prescan<'a>(
        &mut self,
        body: &'a str,
        pre: &mut Prescanned<'a>,
    ) -> Option<(usize, bool, u32)> {
        (**self).prescan(body, pre)
    }
    fn scanned_event(
        &mut self,
        event: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
        scanned: Scanned<'_, '_>,
    ) -> Result<(), Self::Error> {
        (**self).scanned_event(event, escaped, quotes_only, scanned)
    }
    fn progress(&mut self, consumed: u64) {
        (**self).progress(consumed);
    }
}

/// An [`EventSink`] made of two closures, one for events and one for
/// errors.
pub struct FnSink<E, R> {
    on_event: E,
    on_reject: R,
}

impl<E, R, X> FnSink<E, R>
where
    E: FnMut(&LogEvent<'_>) -> Result<(), X>,
    R: FnMut(Error) -> Result<(), X>,
{
    /// A sink calling `on_event` for events and `on_reject` for errors.
    pub fn new(on_event: E, on_reject: R) -> Self {
        FnSink { on_event, on_reject }
    }
}

impl<E, R, X> EventSink for FnSink<E, R>
where
    E: FnMut(&LogEvent<'_>) -> Result<(), X>,
    R: FnMut(Error) -> Result<(), X>,
{
    type Error = X;
    fn event(&mut self, event: &LogEvent<'_>) -> Result<(), X> {
        (self.on_event)(event)
    }
    fn reject(&mut self, error: Error) -> Result<(), X> {
        (self.on_reject)(error)
    }
}
