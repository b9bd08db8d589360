//! Firehose hour prefixes: `--from`/`--to` ranges and `--prefix-template`.
//!
//! Firehose writes each object under `<evaluated prefix><suffix>`, where
//! the prefix holds the UTC hour in which the object's oldest record
//! arrived: `YYYY/MM/dd/HH/` after the static prefix by default, or a
//! custom `--prefix-template` such as
//! `logs/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/`.
//! To load a time range, the S3 source lists one hour prefix at a time
//! instead of the whole bucket. This module is the pure part of that:
//!
//! - [`Hour`], a UTC hour, and [`UtcTime`], an instant, with the civil
//!   calendar done by hand (proleptic Gregorian, no time zones, no DST);
//! - [`parse_time`] for the `--from` and `--to` values;
//! - [`HourRange`], the hours a `--from`/`--to` pair selects;
//! - [`PrefixTemplate`] with [`PrefixTemplate::render`],
//!   [`hour_prefixes`] (one prefix per hour) and [`hour_of_key`] (the hour
//!   a listed key belongs to);
//! - [`decode_event_key`] and [`encode_event_key`], the form encoding of
//!   keys in S3 event notifications.
//!
//! # The range rule
//!
//! Ranges select **objects by the hour in their prefix**. Each end of a
//! range is floored to the hour that contains it, and the range is the
//! half-open interval of hours between them:
//!
//! ```text
//! hours(from, to) = { h : floor(from) <= h < floor(to) }
//! ```
//!
//! Equivalently, hour `h` is selected exactly when its **end** (the start of
//! hour `h + 1`) lies in `(from, to]`. So `--from 13:20` includes hour 13,
//! `--to 14:00` and `--to 14:20` both stop after hour 13, and a range
//! inside one hour (13:20 to 13:40) selects no hour at all; that is not an
//! error, see [`HourRange::is_empty`].
//!
//! Adjacent ranges tile exactly: `floor` is monotone, so for any instants
//! `a < b < c` the intervals `[floor(a), floor(b))` and
//! `[floor(b), floor(c))` are disjoint and their union is
//! `[floor(a), floor(c))`. A job that loads `[last run, now)` each time
//! therefore lists every hour once, in the first run after the hour ends.
//! (Firehose can still write objects into an hour's prefix up to its
//! buffering interval after the hour ends, so such a job should use a
//! `now` that lags the clock by at least that interval.)
//!
//! # Example
//!
//! ```
//! use cwl_copy::load::source::prefix::{
//!     hour_of_key, hour_prefixes, parse_time, HourRange, PrefixTemplate,
//! };
//!
//! let range = HourRange::new(
//!     parse_time("2024-05-01T22:30:00Z")?,
//!     parse_time("2024-05-02T01")?,
//! )?;
//! let template = PrefixTemplate::firehose_default("app-logs/");
//! let prefixes: Vec<String> =
//!     hour_prefixes(&template, range.start(), range.end()).collect();
//! assert_eq!(
//!     prefixes,
//!     [
//!         "app-logs/2024/05/01/22/",
//!         "app-logs/2024/05/01/23/",
//!         "app-logs/2024/05/02/00/",
//!     ]
//! );
//! let key = "app-logs/2024/05/02/00/s-1-2024-05-02-00-03-10-ab12";
//! let hour = hour_of_key(&template, key).ok_or("not a Firehose key")?;
//! assert!(range.contains(hour));
//! assert_eq!(hour.to_string(), "2024-05-02T00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in an hour.
const SECS_PER_HOUR: i64 = 3600;
/// Seconds in a day (UTC has no DST and cwl-copy ignores leap seconds).
const SECS_PER_DAY: i64 = 86_400;
/// Nanoseconds in a second.
const NANOS_PER_SEC: u32 = 1_000_000_000;

/// Index of [`Hour::MIN`], 0001-01-01T00, in hours since the Unix epoch.
const MIN_INDEX: i64 = days_from_civil(1, 1, 1) * 24;
/// Index of [`Hour::MAX`], 9999-12-31T23, in hours since the Unix epoch.
const MAX_INDEX: i64 = days_from_civil(9999, 12, 31) * 24 + 23;

/// The forms [`parse_time`] accepts, for error messages.
const TIME_FORMS: &str = "accepted forms: YYYY-MM-DD (00:00 UTC), \
     YYYY-MM-DDTHH or YYYY-MM-DD HH (UTC), or RFC 3339 such as \
     2024-05-01T13:20:00Z or 2024-05-01T13:20:00.5+02:00";

/// What [`PrefixTemplate::parse`] supports, for error messages.
const TEMPLATE_SUPPORT: &str = "supported: literal text and \
     !{timestamp:…} expressions made of the fields yyyy, MM, dd and HH, \
     separators, and '…' quoted text, e.g. \
     logs/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/";

/// Days from 1970-01-01 to the given proleptic Gregorian date.
///
/// Howard Hinnant's `days_from_civil`; exact for every date whose day
/// count fits in an `i64` with room for the multiplication by 146 097.
/// `month` is 1–12 and `day` 1–31; callers validate both.
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so that the leap day ends the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = if month > 2 { month - 3 } else { month + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count from
/// 1970-01-01: Howard Hinnant's `civil_from_days`, the inverse of
/// [`days_from_civil`].
const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], from March
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// Whether `year` is a Gregorian leap year.
const fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1–12) of `year`; 0 for other months.
const fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A UTC hour: the unit of Firehose's time prefixes.
///
/// Stored as whole hours since 1970-01-01T00 UTC, so it orders, compares
/// and steps like an integer. Its range is [`Hour::MIN`] (0001-01-01T00)
/// to [`Hour::MAX`] (9999-12-31T23): the years a four-digit `yyyy` field
/// holds. It displays as `YYYY-MM-DDTHH`, a form [`parse_time`] reads
/// back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(i64);

impl Hour {
    /// The first representable hour, 0001-01-01T00.
    pub const MIN: Hour = Hour(MIN_INDEX);
    /// The last representable hour, 9999-12-31T23.
    pub const MAX: Hour = Hour(MAX_INDEX);

    /// The hour `hour` of the given date, or `None` when the date does not
    /// exist (month 13, 2023-02-29, …), `hour` is over 23 or `year` is
    /// outside 1–9999.
    #[must_use = "this returns the hour, or None for an invalid date"]
    pub fn from_ymdh(year: u16, month: u8, day: u8, hour: u8) -> Option<Hour> {
        let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
        let valid = (1..=9999).contains(&y)
            && (1..=12).contains(&m)
            && (1..=days_in_month(y, m)).contains(&d)
            && hour <= 23;
        valid.then(|| Hour(days_from_civil(y, m, d) * 24 + i64::from(hour)))
    }

    /// The hour `index` hours after 1970-01-01T00 (before it if negative),
    /// or `None` outside [`Hour::MIN`]..=[`Hour::MAX`].
    #[must_use = "this returns the hour, or None when out of range"]
    pub const fn from_index(index: i64) -> Option<Hour> {
        if index >= MIN_INDEX && index <= MAX_INDEX {
            Some(Hour(index))
        } else {
            None
        }
    }

    /// Whole hours since 1970-01-01T00 UTC (negative before it).
    #[must_use = "this returns the index and has no other effect"]
    pub const fn index(self) -> i64 {
        self.0
    }

    /// The civil fields `(year, month, day, hour)`.
    const fn civil(self) -> (i64, i64, i64, i64) {
        let (y, m, d) = civil_from_days(self.0.div_euclid(24));
        (y, m, d, self.0.rem_euclid(24))
    }

    /// The year, 1–9999.
    #[must_use = "this returns the year and has no other effect"]
    pub fn year(self) -> u16 {
        // In range by construction; the fallback is unreachable.
        u16::try_from(self.civil().0).unwrap_or(u16::MAX)
    }

    /// The month, 1–12.
    #[must_use = "this returns the month and has no other effect"]
    pub fn month(self) -> u8 {
        u8::try_from(self.civil().1).unwrap_or(u8::MAX)
    }

    /// The day of the month, 1–31.
    #[must_use = "this returns the day and has no other effect"]
    pub fn day(self) -> u8 {
        u8::try_from(self.civil().2).unwrap_or(u8::MAX)
    }

    /// The hour of the day, 0–23.
    #[must_use = "this returns the hour of the day and has no other effect"]
    pub fn hour(self) -> u8 {
        u8::try_from(self.civil().3).unwrap_or(u8::MAX)
    }

    /// The following hour, or `None` after [`Hour::MAX`].
    #[must_use = "this returns the next hour; `self` is not changed"]
    pub const fn next(self) -> Option<Hour> {
        Hour::from_index(self.0 + 1)
    }

    /// The first instant of this hour (`HH:00:00Z`).
    #[must_use = "this returns the instant and has no other effect"]
    pub const fn start(self) -> UtcTime {
        UtcTime { secs: self.0 * SECS_PER_HOUR, nanos: 0 }
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d, h) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}")
    }
}

/// An instant in UTC, to the nanosecond: what [`parse_time`] returns.
///
/// Its range is the start of 0001-01-01 up to, not including, 10000-01-01
/// UTC, the span of [`Hour`]. Leap seconds are not represented (as in Unix
/// time). It displays in RFC 3339 form with a `Z` offset, e.g.
/// `2024-05-01T13:20:00Z` or `2024-05-01T13:20:00.5Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime {
    /// Seconds since 1970-01-01T00:00:00Z, floored.
    secs: i64,
    /// Nanoseconds after `secs`, below 1 000 000 000.
    nanos: u32,
}

impl UtcTime {
    /// The instant `secs` seconds and `nanos` nanoseconds after the Unix
    /// epoch, or `None` if `nanos` is 10⁹ or more or the instant is
    /// outside the years 1–9999.
    #[must_use = "this returns the instant, or None when out of range"]
    pub const fn from_unix(secs: i64, nanos: u32) -> Option<UtcTime> {
        let in_range = secs >= MIN_INDEX * SECS_PER_HOUR
            && secs < (MAX_INDEX + 1) * SECS_PER_HOUR;
        if in_range && nanos < NANOS_PER_SEC {
            Some(UtcTime { secs, nanos })
        } else {
            None
        }
    }

    /// The instant a [`SystemTime`] stands for (e.g. `SystemTime::now()`
    /// as the end of an open range), or `None` outside the years 1–9999.
    #[must_use = "this returns the instant, or None when out of range"]
    pub fn from_system_time(time: SystemTime) -> Option<UtcTime> {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => {
                let secs = i64::try_from(after.as_secs()).ok()?;
                UtcTime::from_unix(secs, after.subsec_nanos())
            }
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).ok()?;
                match before.subsec_nanos() {
                    0 => UtcTime::from_unix(-secs, 0),
                    n => UtcTime::from_unix(-secs - 1, NANOS_PER_SEC - n),
                }
            }
        }
    }

    /// Whole seconds since the Unix epoch, floored (so negative instants
    /// with a fraction round down).
    #[must_use = "this returns the seconds and has no other effect"]
    pub const fn unix_seconds(self) -> i64 {
        self.secs
    }

    /// The nanoseconds after [`UtcTime::unix_seconds`], below 10⁹.
    #[must_use = "this returns the nanoseconds and has no other effect"]
    pub const fn subsec_nanos(self) -> u32 {
        self.nanos
    }

    /// The hour that contains this instant (the instant floored to the
    /// hour).
    #[must_use = "this returns the hour and has no other effect"]
    pub const fn hour(self) -> Hour {
        Hour(self.secs.div_euclid(SECS_PER_HOUR))
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = civil_from_days(self.secs.div_euclid(SECS_PER_DAY));
        let of_day = self.secs.rem_euclid(SECS_PER_DAY);
        let (h, mi, s) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if self.nanos != 0 {
            let mut digits = format!("{:09}", self.nanos);
            while digits.ends_with('0') {
                digits.pop();
            }
            write!(f, ".{digits}")?;
        }
        f.write_str("Z")
    }
}

impl FromStr for UtcTime {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<UtcTime, PrefixError> {
        parse_time(s)
    }
}

/// An error in a `--from`/`--to` time, a `--prefix-template`, or an event
/// notification's object key.
///
/// Every message names the offending input and says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// A time is in none of the forms [`parse_time`] accepts.
    #[error("invalid time `{input}`: {problem}; {forms}", forms = TIME_FORMS)]
    TimeSyntax {
        /// The time as given.
        input: String,
        /// What is wrong, at the first place it goes wrong.
        problem: &'static str,
    },
    /// A field of a time is out of its range: month 13, day 30 of
    /// February, hour 24, an offset of +24:00, ….
    #[error(
        "invalid time `{input}`: {field} is {value}, not {min} to {max}; \
         {forms}",
        forms = TIME_FORMS
    )]
    TimeField {
        /// The time as given.
        input: String,
        /// The field, e.g. `month` or `day of 2023-02`.
        field: String,
        /// The value given.
        value: u32,
        /// The smallest valid value.
        min: u32,
        /// The largest valid value.
        max: u32,
    },
    /// A time is valid but falls outside the years 0001–9999 once its
    /// offset is applied.
    #[error(
        "time `{input}` is outside the years 0001 to 9999 UTC that \
         Firehose prefixes (yyyy) can hold"
    )]
    TimeOutOfRange {
        /// The time as given.
        input: String,
    },
    /// The start of a range is not before its end (`--to` is exclusive).
    #[error(
        "empty time range: from {from} is not before to {to} (the end is \
         exclusive and must be later than the start)"
    )]
    EmptyRange {
        /// The start, as given or in RFC 3339 UTC form.
        from: String,
        /// The end, as given or in RFC 3339 UTC form.
        to: String,
    },
    /// A template has `!{` with no closing `}`.
    #[error(
        "prefix template `{template}`: `!{{` at byte {at} is not closed by \
         `}}`; {support}",
        support = TEMPLATE_SUPPORT
    )]
    TemplateUnterminated {
        /// The template as given.
        template: String,
        /// Byte offset of the `!{` in the template.
        at: usize,
    },
    /// A template has an expression outside the `timestamp` namespace, or
    /// one that is not of the form `!{namespace:value}`.
    #[error(
        "prefix template `{template}`: {expression} is not supported: \
         {problem}; {support}",
        support = TEMPLATE_SUPPORT
    )]
    TemplateExpression {
        /// The template as given.
        template: String,
        /// The whole expression, `!{…}`.
        expression: String,
        /// Why it cannot be used.
        problem: String,
    },
    /// A `!{timestamp:…}` pattern uses a letter, a count of letters or a
    /// DateTimeFormatter feature that cwl-copy does not support, or has an
    /// unterminated quote.
    #[error(
        "prefix template `{template}`: in {expression}, {problem}; \
         {support}",
        support = TEMPLATE_SUPPORT
    )]
    TemplatePattern {
        /// The template as given.
        template: String,
        /// The whole expression, `!{timestamp:…}`.
        expression: String,
        /// What in the pattern is not supported.
        problem: String,
    },
    /// A template lacks the hour or a coarser field, so hour prefixes
    /// cannot be computed from it.
    #[error(
        "prefix template `{template}` has no {missing}: listing by hour \
         needs yyyy, MM, dd and HH; {support}",
        support = TEMPLATE_SUPPORT
    )]
    TemplateMissingFields {
        /// The template as given.
        template: String,
        /// The missing fields, comma-separated, e.g. `dd, HH`.
        missing: String,
    },
    /// An event key has a `%` not followed by two hexadecimal digits.
    #[error(
        "object key `{key}` from an event notification: bad percent escape \
         at byte {at} (expected `%` and two hex digits)"
    )]
    EventKeyEscape {
        /// The key as it appeared in the notification.
        key: String,
        /// Byte offset of the `%` in the key.
        at: usize,
    },
    /// An event key decodes to bytes that are not UTF-8.
    #[error(
        "object key `{key}` from an event notification decodes to invalid \
         UTF-8 at byte {at} of the encoded key"
    )]
    EventKeyUtf8 {
        /// The key as it appeared in the notification.
        key: String,
        /// Byte offset in the encoded key of the escape or character that
        /// starts the invalid sequence.
        at: usize,
    },
}

/// A cursor over the bytes of a time being parsed.
struct Cursor<'a> {
    /// The input.
    bytes: &'a [u8],
    /// The next byte to read.
    pos: usize,
}

impl Cursor<'_> {
    /// The next byte, without consuming it.
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes the next byte.
    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    /// Consumes exactly `n` ASCII digits and returns their value.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(byte - b'0');
            self.pos += 1;
        }
        Some(value)
    }

    /// Whether all the input has been read.
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

/// Parses a `--from` or `--to` value.
///
/// Accepted forms:
///
/// - `YYYY-MM-DD`: 00:00 UTC of that day;
/// - `YYYY-MM-DDTHH`, or with a space (or `t`) for the `T`: the start of
///   that UTC hour;
/// - RFC 3339, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, e.g.
///   `2024-05-01T13:20:00Z`, `2024-05-01T15:20:00+02:00` or
///   `2024-05-01T13:20:00.250Z`. `T` may be `t` or a space and `Z` may be
///   `z`; the fraction may have any number of digits (kept to the
///   nanosecond, truncated). The offset is required: a time with minutes
///   but no offset is rejected rather than guessed to be local time.
///
/// Forms without an offset are UTC. Leap seconds (`:60`) are not accepted.
/// See [the module docs](self) for how a range uses the result.
///
/// # Errors
///
/// [`PrefixError::TimeSyntax`] if `s` is in none of these forms,
/// [`PrefixError::TimeField`] if a field is out of range (month 1–12, day
/// valid for the month and year, hour 0–23, minute and second 0–59, offset
/// up to ±23:59), and [`PrefixError::TimeOutOfRange`] if the instant is
/// outside the years 0001–9999 UTC.
///
/// # Example
///
/// ```
/// use cwl_copy::load::source::prefix::parse_time;
///
/// let t = parse_time("2024-05-01T15:20:00+02:00")?;
/// assert_eq!(t.to_string(), "2024-05-01T13:20:00Z");
/// assert_eq!(t.hour(), parse_time("2024-05-01 13")?.hour());
/// assert!(parse_time("2024-02-30").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_time(s: &str) -> Result<UtcTime, PrefixError> {
    let syntax = |problem: &'static str| PrefixError::TimeSyntax {
        input: s.to_owned(),
        problem,
    };
    let field = |field: String, value: u32, min: u32, max: u32| {
        PrefixError::TimeField { input: s.to_owned(), field, value, min, max }
    };
    let check = |name: &str, value: u32, min: u32, max: u32| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(field(name.to_owned(), value, min, max))
        }
    };

    let mut c = Cursor { bytes: s.as_bytes(), pos: 0 };
    let year = c.digits(4).ok_or_else(|| syntax("expected a 4-digit year"))?;
    if !c.eat(b'-') {
        return Err(syntax("expected `-` after the year"));
    }
    let month =
        c.digits(2).ok_or_else(|| syntax("expected a 2-digit month"))?;
    if !c.eat(b'-') {
        return Err(syntax("expected `-` after the month"));
    }
    let day = c.digits(2).ok_or_else(|| syntax("expected a 2-digit day"))?;
    check("year", year, 1, 9999)?;
    check("month", month, 1, 12)?;
    let month_days = days_in_month(i64::from(year), i64::from(month));
    let month_days = u32::try_from(month_days).unwrap_or(0);
    check(&format!("day of {year:04}-{month:02}"), day, 1, month_days)?;
    let days =
        days_from_civil(i64::from(year), i64::from(month), i64::from(day));

    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut offset_secs = 0i64;
    if !c.at_end() {
        if !matches!(c.bump(), Some(b'T' | b't' | b' ')) {
            return Err(syntax("expected `T` or a space after the date"));
        }
        hour = c.digits(2).ok_or_else(|| syntax("expected a 2-digit hour"))?;
        check("hour", hour, 0, 23)?;
    }
    if !c.at_end() {
        if !c.eat(b':') {
            return Err(syntax("expected `:` and minutes after the hour"));
        }
        minute = c
            .digits(2)
            .ok_or_else(|| syntax("expected 2-digit minutes after `:`"))?;
        if !c.eat(b':') {
            return Err(syntax(
                "expected `:` and seconds after the minutes (RFC 3339 \
                 requires seconds)",
            ));
        }
        second = c
            .digits(2)
            .ok_or_else(|| syntax("expected 2-digit seconds after `:`"))?;
        check("minute", minute, 0, 59)?;
        check("second", second, 0, 59)?;
        if c.eat(b'.') {
            let mut count = 0usize;
            while let Some(digit) = c.peek().filter(u8::is_ascii_digit) {
                if count < 9 {
                    nanos = nanos * 10 + u32::from(digit - b'0');
                }
                count += 1;
                c.pos += 1;
            }
            if count == 0 {
                return Err(syntax("expected digits after `.`"));
            }
            for _ in count..9 {
                nanos *= 10;
            }
        }
        offset_secs =
            match c.bump() {
                Some(b'Z' | b'z') => 0,
                Some(sign @ (b'+' | b'-')) => {
                    let problem = "expected an offset of the form ±HH:MM";
                    let oh = c.digits(2).ok_or_else(|| syntax(problem))?;
                    if !c.eat(b':') {
                        return Err(syntax(problem));
                    }
                    let om = c.digits(2).ok_or_else(|| syntax(problem))?;
                    check("offset hour", oh, 0, 23)?;
                    check("offset minute", om, 0, 59)?;
                    let secs = i64::from(oh) * 3600 + i64::from(om) * 60;
                    if sign == b'-' {
                        -secs
                    } else {
                        secs
                    }
                }
                None => return Err(syntax(
                    "a time with minutes needs a UTC offset: end it with `Z` \
                     for UTC or an offset such as `+02:00`",
                )),
                Some(_) => return Err(syntax(
                    "expected `Z` or an offset such as `+02:00` after the \
                     seconds",
                )),
            };
        if !c.at_end() {
            return Err(syntax("unexpected text after the UTC offset"));
        }
    }

    let secs = days * SECS_PER_DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset_secs;
    UtcTime::from_unix(secs, nanos)
        .ok_or_else(|| PrefixError::TimeOutOfRange { input: s.to_owned() })
}

/// The hours a `--from`/`--to` pair selects: `[floor(from), floor(to))`.
///
/// See [the module docs](self) for the rule and why adjacent ranges tile
/// exactly. A range whose two ends fall in the same hour is valid and
/// empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HourRange {
    /// The first hour selected (if the range is not empty).
    start: Hour,
    /// The first hour after the range.
    end: Hour,
}

impl HourRange {
    /// The hours selected by objects from `from` (inclusive) to `to`
    /// (exclusive): every hour `h` with
    /// `from.hour() <= h < to.hour()`.
    ///
    /// # Errors
    ///
    /// [`PrefixError::EmptyRange`], naming both instants, if `from` is not
    /// before `to`.
    pub fn new(from: UtcTime, to: UtcTime) -> Result<HourRange, PrefixError> {
        if from >= to {
            return Err(PrefixError::EmptyRange {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        Ok(HourRange { start: from.hour(), end: to.hour() })
    }

    /// Parses both ends with [`parse_time`] and builds the range.
    ///
    /// # Errors
    ///
    /// Any error of [`parse_time`] for either value, or
    /// [`PrefixError::EmptyRange`] (naming both values as given) if `from`
    /// is not before `to`.
    pub fn parse(from: &str, to: &str) -> Result<HourRange, PrefixError> {
        let (start, end) = (parse_time(from)?, parse_time(to)?);
        if start >= end {
            return Err(PrefixError::EmptyRange {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        Ok(HourRange { start: start.hour(), end: end.hour() })
    }

    /// The first hour of the range (the hour containing `from`).
    #[must_use = "this returns the hour and has no other effect"]
    pub const fn start(self) -> Hour {
        self.start
    }

    /// The hour after the last one of the range (the hour containing
    /// `to`, which is not selected).
    #[must_use = "this returns the hour and has no other effect"]
    pub const fn end(self) -> Hour {
        self.end
    }

    /// The number of hours selected.
    #[must_use = "this returns the length and has no other effect"]
    pub fn len(self) -> u64 {
        u64::try_from(self.end.0 - self.start.0).unwrap_or(0)
    }

    /// Whether no hour is selected: both ends fall in the same hour.
    #[must_use = "this returns a bool and has no other effect"]
    pub const fn is_empty(self) -> bool {
        self.start.0 >= self.end.0
    }

    /// Whether `hour` is selected.
    #[must_use = "this returns a bool and has no other effect"]
    pub fn contains(self, hour: Hour) -> bool {
        self.start <= hour && hour < self.end
    }

    /// The selected hours, in order.
    pub fn hours(self) -> impl DoubleEndedIterator<Item = Hour> {
        (self.start.0..self.end.0).map(Hour)
    }
}

/// A field of a `!{timestamp:…}` pattern that cwl-copy supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// `yyyy`, the year in four digits.
    Year,
    /// `MM`, the month 01–12.
    Month,
    /// `dd`, the day of the month 01–31.
    Day,
    /// `HH`, the hour of the day 00–23.
    Hour,
}

impl Field {
    /// All fields, coarsest first.
    const ALL: [Field; 4] =
        [Field::Year, Field::Month, Field::Day, Field::Hour];

    /// The pattern letters, as written in DateTimeFormatter.
    const fn letters(self) -> &'static str {
        match self {
            Field::Year => "yyyy",
            Field::Month => "MM",
            Field::Day => "dd",
            Field::Hour => "HH",
        }
    }

    /// The number of digits the field renders to.
    const fn width(self) -> usize {
        match self {
            Field::Year => 4,
            _ => 2,
        }
    }

    /// The field's value in `hour`.
    fn value(self, hour: Hour) -> u32 {
        match self {
            Field::Year => u32::from(hour.year()),
            Field::Month => u32::from(hour.month()),
            Field::Day => u32::from(hour.day()),
            Field::Hour => u32::from(hour.hour()),
        }
    }
}

/// A piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Text copied as is (adjacent literals are merged).
    Literal(String),
    /// A time field, rendered with leading zeros.
    Field(Field),
}

/// A Firehose S3 prefix with time fields: `--prefix-template`, or the
/// default `YYYY/MM/dd/HH/` after a static prefix.
///
/// It supports the subset of Firehose's custom prefixes that determines
/// an object's hour and can be listed by hour: literal text and
/// `!{timestamp:…}` expressions whose Java DateTimeFormatter pattern uses
/// `yyyy`, `MM`, `dd` and `HH`, other non-letter characters as literal
/// separators (`!{timestamp:yyyy-MM-dd}`), and `'…'` quoted text (`''` is
/// a quote). Every expression evaluates to the same hour, as in Firehose.
/// The template must contain all four fields (each may repeat).
///
/// As Firehose does, a template with no expression at all gets
/// `!{timestamp:yyyy/MM/dd/HH/}` appended, so `logs/` means
/// `logs/YYYY/MM/dd/HH/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixTemplate {
    /// The template text: as given, or the equivalent Firehose syntax for
    /// [`PrefixTemplate::firehose_default`].
    source: String,
    /// The parsed pieces, never two literals in a row.
    segments: Vec<Segment>,
}

impl PrefixTemplate {
    /// The prefix Firehose uses when no custom prefix is configured:
    /// `static_prefix` followed by `YYYY/MM/dd/HH/` (UTC). Firehose adds
    /// no `/` between them, so `static_prefix` normally ends in one, as in
    /// `app-logs/from_CloudWatchLogs/`. It is taken literally, even if it
    /// contains `!{`.
    #[must_use = "this returns the template and has no other effect"]
    pub fn firehose_default(static_prefix: &str) -> PrefixTemplate {
        let mut segments = Vec::with_capacity(9);
        push_literal(&mut segments, static_prefix);
        append_default(&mut segments);
        PrefixTemplate {
            source: format!("{static_prefix}!{{timestamp:yyyy/MM/dd/HH/}}"),
            segments,
        }
    }

    /// Parses a `--prefix-template` in Firehose's custom-prefix syntax.
    ///
    /// An expression ends at the first `}` after its `!{`, as Firehose
    /// reads it; a literal outside expressions may contain anything but
    /// `!{`.
    ///
    /// # Errors
    ///
    /// - [`PrefixError::TemplateUnterminated`] for a `!{` without `}`;
    /// - [`PrefixError::TemplateExpression`] for `!{firehose:…}`,
    ///   `!{partitionKeyFromQuery:…}`, `!{partitionKeyFromLambda:…}`, an
    ///   unknown namespace, or an expression without `:`;
    /// - [`PrefixError::TemplatePattern`] for pattern letters other than
    ///   `yyyy`, `MM`, `dd` and `HH` (`mm`, `ss`, `YYYY`, `M`, …), an
    ///   unterminated quote, optional sections `[…]`, reserved characters,
    ///   or an empty pattern;
    /// - [`PrefixError::TemplateMissingFields`] if `yyyy`, `MM`, `dd` or
    ///   `HH` is missing.
    ///
    /// # Example
    ///
    /// ```
    /// use cwl_copy::load::source::prefix::{Hour, PrefixTemplate};
    ///
    /// let t = PrefixTemplate::parse(
    ///     "logs/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/",
    /// )?;
    /// let h = Hour::from_ymdh(2024, 2, 29, 7).ok_or("no such hour")?;
    /// assert_eq!(t.render(h), "logs/dt=2024-02-29/hour=07/");
    /// assert_eq!(t.static_prefix(), "logs/dt=");
    /// assert!(PrefixTemplate::parse("logs/!{timestamp:yyyy/MM/dd}/").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(template: &str) -> Result<PrefixTemplate, PrefixError> {
        let mut segments = Vec::new();
        let mut rest = template;
        let mut any_expression = false;
        while let Some((before, after)) = rest.split_once("!{") {
            push_literal(&mut segments, before);
            let at = template.len() - rest.len() + before.len();
            let Some((body, tail)) = after.split_once('}') else {
                return Err(PrefixError::TemplateUnterminated {
                    template: template.to_owned(),
                    at,
                });
            };
            let expression = format!("!{{{body}}}");
            let expression_error =
                |problem: String| PrefixError::TemplateExpression {
                    template: template.to_owned(),
                    expression: expression.clone(),
                    problem,
                };
            match body.split_once(':') {
                Some(("timestamp", pattern)) => {
                    parse_pattern(pattern, &mut segments).map_err(
                        |problem| PrefixError::TemplatePattern {
                            template: template.to_owned(),
                            expression: expression.clone(),
                            problem,
                        },
                    )?;
                }
                Some(("firehose", _)) => {
                    return Err(expression_error(
                        "firehose values (random-string, error-output-type) \
                         are not time fields, so hour prefixes cannot be \
                         computed through them"
                            .to_owned(),
                    ))
                }
                Some((
                    "partitionKeyFromQuery" | "partitionKeyFromLambda",
                    _,
                )) => {
                    return Err(expression_error(
                        "dynamic partitioning keys come from each record, \
                         so hour prefixes cannot be computed through them"
                            .to_owned(),
                    ))
                }
                Some((namespace, _)) => {
                    return Err(expression_error(format!(
                        "unknown namespace `{namespace}` (Firehose has \
                         timestamp, firehose, partitionKeyFromQuery and \
                         partitionKeyFromLambda)"
                    )))
                }
                None => {
                    return Err(expression_error(
                        "expected the form !{namespace:value}".to_owned(),
                    ))
                }
            }
            any_expression = true;
            rest = tail;
        }
        push_literal(&mut segments, rest);
        if !any_expression {
            append_default(&mut segments);
        }

        let missing: Vec<&str> = Field::ALL
            .iter()
            .filter(|f| !segments.contains(&Segment::Field(**f)))
            .map(|f| f.letters())
            .collect();
        if !missing.is_empty() {
            return Err(PrefixError::TemplateMissingFields {
                template: template.to_owned(),
                missing: missing.join(", "),
            });
        }
        Ok(PrefixTemplate { source: template.to_owned(), segments })
    }

    /// The prefix of every key under `hour`: the template with each field
    /// replaced by `hour`'s value, zero-padded (`yyyy` to 4 digits, the
    /// others to 2).
    ///
    /// Every rendering has the same length and the fields determine the
    /// hour, so listing the rendering of `hour` returns exactly the
    /// objects of that hour.
    #[must_use = "this returns the prefix and has no other effect"]
    pub fn render(&self, hour: Hour) -> String {
        let mut out = String::with_capacity(self.source.len() + 8);
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Field(field) => {
                    push_padded(&mut out, field.value(hour), field.width());
                }
            }
        }
        out
    }

    /// The literal text before the first time field: a prefix of every
    /// key the template matches, for listing everything when no range is
    /// given. It includes separators and quoted text at the start of the
    /// first `!{timestamp:…}` expression.
    #[must_use = "this returns the prefix and has no other effect"]
    pub fn static_prefix(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Literal(text)) => text,
            _ => "",
        }
    }

    /// The template text (for [`PrefixTemplate::firehose_default`], the
    /// static prefix followed by `!{timestamp:yyyy/MM/dd/HH/}`).
    #[must_use = "this returns the text and has no other effect"]
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for PrefixTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for PrefixTemplate {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<PrefixTemplate, PrefixError> {
        PrefixTemplate::parse(s)
    }
}

/// Appends literal text, merging it with a literal already at the end.
fn push_literal(segments: &mut Vec<Segment>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Segment::Literal(last)) = segments.last_mut() {
        last.push_str(text);
    } else {
        segments.push(Segment::Literal(text.to_owned()));
    }
}

/// Appends Firehose's default `yyyy/MM/dd/HH/`.
fn append_default(segments: &mut Vec<Segment>) {
    for field in Field::ALL {
        segments.push(Segment::Field(field));
        push_literal(segments, "/");
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits (values
/// never exceed the width: fields come from a valid [`Hour`]).
fn push_padded(out: &mut String, value: u32, width: usize) {
    let mut divisor = 1u32;
    for _ in 1..width {
        divisor = divisor.saturating_mul(10);
    }
    while divisor > 0 {
        let digit = u8::try_from(value / divisor % 10).unwrap_or(0);
        out.push(char::from(b'0' + digit));
        divisor /= 10;
    }
}

/// Parses the value of a `!{timestamp:…}` expression into `segments`,
/// returning what is wrong with it on failure.
///
/// DateTimeFormatter rules: ASCII letters are pattern letters, `'…'`
/// quotes literal text and `''` is a quote (inside or outside quotes),
/// `[`, `]`, `{`, `}` and `#` are special, and every other character is
/// literal.
fn parse_pattern(
    pattern: &str,
    segments: &mut Vec<Segment>,
) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("the timestamp pattern is empty".to_owned());
    }
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphabetic() {
            let mut count = 1usize;
            while chars.next_if_eq(&c).is_some() {
                count += 1;
            }
            let field = match (c, count) {
                ('y', 4) => Field::Year,
                ('M', 2) => Field::Month,
                ('d', 2) => Field::Day,
                ('H', 2) => Field::Hour,
                _ => {
                    let letters: String =
                        std::iter::repeat_n(c, count).collect();
                    return Err(unsupported_letters(&letters, c));
                }
            };
            segments.push(Segment::Field(field));
        } else if c == '\'' {
            if chars.next_if_eq(&'\'').is_some() {
                push_literal(segments, "'");
                continue;
            }
            let mut quoted = String::new();
            loop {
                match chars.next() {
                    None => return Err("a quote `'` is not closed".to_owned()),
                    Some('\'') => {
                        if chars.next_if_eq(&'\'').is_some() {
                            quoted.push('\'');
                        } else {
                            break;
                        }
                    }
                    Some(other) => quoted.push(other),
                }
            }
            push_literal(segments, &quoted);
        } else if matches!(c, '[' | ']' | '{' | '}' | '#') {
            return Err(format!(
                "`{c}` (optional sections and reserved characters) is not \
                 supported; quote it as '{c}' to use it as text"
            ));
        } else {
            let mut buf = [0u8; 4];
            push_literal(segments, c.encode_utf8(&mut buf));
        }
    }
    Ok(())
}

/// The message for an unsupported run of pattern letters.
fn unsupported_letters(letters: &str, letter: char) -> String {
    let hint = match letter {
        'y' | 'M' | 'd' | 'H' => {
            "only the fixed-width forms yyyy, MM, dd and HH can be listed \
             and parsed back"
        }
        'm' | 's' | 'S' | 'n' | 'N' | 'A' => {
            "fields finer than the hour cannot be listed by hour"
        }
        'Y' => "Y is the week-based year; use yyyy",
        'u' => "u is the proleptic year; use yyyy",
        'D' => "D is the day of the year; use MM and dd",
        'h' | 'k' | 'K' => "use HH for the hour of the day, 00-23",
        _ => "that field is not supported",
    };
    format!("pattern letters `{letters}` are not supported ({hint})")
}

/// One rendered prefix per hour in `[from, to)`, in order (none if `from`
/// is not before `to`). Use [`HourRange::start`] and [`HourRange::end`]
/// for a range from `--from`/`--to`.
pub fn hour_prefixes(
    template: &PrefixTemplate,
    from: Hour,
    to: Hour,
) -> impl DoubleEndedIterator<Item = String> + '_ {
    (from.0..to.0).map(move |index| template.render(Hour(index)))
}

/// The hour a listed key belongs to: the fields of `template` read back
/// from the start of `key` (whatever follows the rendered prefix is the
/// object's suffix).
///
/// Returns `None` if the key does not start with a rendering of the
/// template: a literal differs, a field is not all digits, repeated fields
/// disagree, or the fields make no valid date (2024/02/30).
#[must_use = "this returns the hour and has no other effect"]
pub fn hour_of_key(template: &PrefixTemplate, key: &str) -> Option<Hour> {
    let mut values: [Option<u32>; 4] = [None; 4];
    let mut rest = key;
    for segment in &template.segments {
        match segment {
            Segment::Literal(text) => {
                rest = rest.strip_prefix(text.as_str())?
            }
            Segment::Field(field) => {
                let width = field.width();
                let digits = rest.get(..width)?;
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let value: u32 = digits.parse().ok()?;
                let slot = values.get_mut(*field as usize)?;
                match *slot {
                    Some(seen) if seen != value => return None,
                    _ => *slot = Some(value),
                }
                rest = rest.get(width..)?;
            }
        }
    }
    let [Some(y), Some(m), Some(d), Some(h)] = values else {
        return None;
    };
    Hour::from_ymdh(
        u16::try_from(y).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(d).ok()?,
        u8::try_from(h).ok()?,
    )
}

/// The value of an ASCII hexadecimal digit.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The uppercase hexadecimal digit for the low four bits of `nibble`.
fn hex_digit(nibble: u8) -> char {
    let n = nibble & 0x0f;
    char::from(if n < 10 { b'0' + n } else { b'A' + n - 10 })
}

/// Decodes an object key from an S3 event notification.
///
/// Notifications form-encode `s3.object.key`: each `+` is a space, then
/// `%XX` escapes are decoded to bytes, which must form UTF-8. Characters
/// that were not encoded (including non-ASCII ones) pass through. A
/// literal `+` arrives as `%2B`.
///
/// # Errors
///
/// [`PrefixError::EventKeyEscape`] if a `%` is not followed by two hex
/// digits, and [`PrefixError::EventKeyUtf8`] if the decoded bytes are not
/// UTF-8; both give the byte offset in `s`.
///
/// # Example
///
/// ```
/// use cwl_copy::load::source::prefix::decode_event_key;
///
/// let key = decode_event_key("logs/2024/05/01/13/x%3Ay+z%2B%C3%BC")?;
/// assert_eq!(key, "logs/2024/05/01/13/x:y z+ü");
/// assert!(decode_event_key("bad%G0").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_event_key(s: &str) -> Result<String, PrefixError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PrefixError::EventKeyEscape {
                        key: s.to_owned(),
                        at: i,
                    });
                };
                out.push((hi << 4) | lo);
                i += 3;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| PrefixError::EventKeyUtf8 {
        key: s.to_owned(),
        at: encoded_offset(bytes, e.utf8_error().valid_up_to()),
    })
}

/// The offset in an encoded key of the input that produced decoded byte
/// `decoded` (every decoded byte comes from one `%XX`, `+` or byte).
fn encoded_offset(encoded: &[u8], decoded: usize) -> usize {
    let mut i = 0;
    for _ in 0..decoded {
        i += if encoded.get(i) == Some(&b'%') { 3 } else { 1 };
    }
    i
}

/// Encodes an object key as S3 event notifications do (form encoding):
/// a space becomes `+`, the unreserved characters `A–Z a–z 0–9 - _ . ~`
/// and `/` stay as they are, and every other byte of the UTF-8 key
/// becomes `%XX` (uppercase hex), `+` included.
///
/// [`decode_event_key`] inverts it for every string. Useful to build test
/// notifications.
///
/// # Example
///
/// ```
/// use cwl_copy::load::source::prefix::encode_event_key;
///
/// assert_eq!(encode_event_key("logs/x:y z+ü"), "logs/x%3Ay+z%2B%C3%BC");
/// ```
#[must_use = "this returns the encoded key and has no other effect"]
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(hex_digit(byte >> 4));
                out.push(hex_digit(byte));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Shorthand for a valid hour in tests.
    fn h(y: u16, m: u8, d: u8, hh: u8) -> Hour {
        Hour::from_ymdh(y, m, d, hh).unwrap()
    }

    /// Shorthand for a parsed time in tests.
    fn t(s: &str) -> UtcTime {
        parse_time(s).unwrap()
    }

    // ---- calendar -------------------------------------------------------

    /// The obvious calendar, for comparison.
    fn naive_days_in_month(y: u16, m: u8) -> u8 {
        let leap = y.is_multiple_of(4)
            && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn calendar_walks_every_hour_of_several_years() {
        // Leap (2000, 2024, 2400), not leap (1900, 2100, 2023), the ends
        // of the range, and the epoch.
        let years =
            [1, 1900, 1969, 1970, 1999, 2000, 2023, 2024, 2100, 2400, 9999];
        for year in years {
            let mut hour = h(year, 1, 1, 0);
            let (mut m, mut d, mut hh) = (1u8, 1u8, 0u8);
            let mut count = 0;
            loop {
                assert_eq!(
                    (hour.year(), hour.month(), hour.day(), hour.hour()),
                    (year, m, d, hh),
                    "at {hour}"
                );
                assert_eq!(Hour::from_ymdh(year, m, d, hh), Some(hour));
                let shown = hour.to_string();
                assert_eq!(shown.parse::<UtcTime>(), Ok(hour.start()));
                assert_eq!(hour.start().hour(), hour);
                count += 1;
                hh += 1;
                if hh == 24 {
                    hh = 0;
                    d += 1;
                }
                if d > naive_days_in_month(year, m) {
                    d = 1;
                    m += 1;
                }
                if m == 13 {
                    break;
                }
                hour = hour.next().unwrap();
            }
            let leap = naive_days_in_month(year, 2) == 29;
            assert_eq!(count, if leap { 366 * 24 } else { 365 * 24 });
            assert_eq!(hour.next(), Hour::from_ymdh(year + 1, 1, 1, 0));
        }
    }

    #[test]
    fn leap_days() {
        let cases = [
            ((2024, 2, 29), true),
            ((2023, 2, 29), false),
            ((2000, 2, 29), true),
            ((2100, 2, 29), false),
            ((1900, 2, 29), false),
            ((2400, 2, 29), true),
            ((2024, 2, 30), false),
            ((2024, 4, 31), false),
            ((2024, 12, 31), true),
            ((2024, 13, 1), false),
            ((2024, 0, 1), false),
            ((2024, 1, 0), false),
            ((0, 1, 1), false),
            ((10000, 1, 1), false),
        ];
        for ((y, m, d), valid) in cases {
            assert_eq!(
                Hour::from_ymdh(y, m, d, 0).is_some(),
                valid,
                "{y}-{m}-{d}"
            );
        }
        assert!(Hour::from_ymdh(2024, 1, 1, 23).is_some());
        assert!(Hour::from_ymdh(2024, 1, 1, 24).is_none());
    }

    #[test]
    fn known_instants() {
        assert_eq!(h(1970, 1, 1, 0).index(), 0);
        assert_eq!(h(1969, 12, 31, 23).index(), -1);
        assert_eq!(h(2024, 5, 1, 13).start().unix_seconds(), 1_714_568_400);
        let y2038 = t("2038-01-19T03:14:07Z");
        assert_eq!(y2038.unix_seconds(), 2_147_483_647);
        assert_eq!(y2038.hour(), h(2038, 1, 19, 3));
        assert_eq!(t("2000-02-29").unix_seconds(), 951_782_400);
        assert_eq!(t("2000-03-01").unix_seconds(), 951_868_800);
        assert_eq!(t("0001-01-01").hour(), Hour::MIN);
        assert_eq!(t("9999-12-31T23:59:59.999999999Z").hour(), Hour::MAX);
    }

    #[test]
    fn hour_bounds_and_display() {
        assert_eq!(Hour::MIN.to_string(), "0001-01-01T00");
        assert_eq!(Hour::MAX.to_string(), "9999-12-31T23");
        assert_eq!(Hour::MAX.next(), None);
        assert_eq!(Hour::from_index(Hour::MIN.index() - 1), None);
        assert_eq!(Hour::from_index(Hour::MAX.index() + 1), None);
        assert_eq!(Hour::from_index(i64::MIN), None);
        assert_eq!(Hour::from_index(i64::MAX), None);
        assert_eq!(h(2024, 2, 29, 7).to_string(), "2024-02-29T07");
        assert!(h(2024, 2, 29, 23) < h(2024, 3, 1, 0));
        assert_eq!(h(2024, 2, 29, 23).next(), Some(h(2024, 3, 1, 0)));
        assert_eq!(h(2023, 12, 31, 23).next(), Some(h(2024, 1, 1, 0)));
    }

    #[test]
    fn utc_time_bounds_and_display() {
        assert_eq!(UtcTime::from_unix(0, NANOS_PER_SEC), None);
        assert_eq!(UtcTime::from_unix(i64::MAX, 0), None);
        assert_eq!(UtcTime::from_unix(i64::MIN, 0), None);
        let cases = [
            ("2024-05-01T13:20:00Z", "2024-05-01T13:20:00Z"),
            ("2024-05-01T13:20:00.500Z", "2024-05-01T13:20:00.5Z"),
            (
                "2024-05-01T13:20:00.000000001Z",
                "2024-05-01T13:20:00.000000001Z",
            ),
            ("2024-05-01T15:20:00+02:00", "2024-05-01T13:20:00Z"),
            ("1969-12-31T23:59:59.25Z", "1969-12-31T23:59:59.25Z"),
            ("2024-05-01", "2024-05-01T00:00:00Z"),
        ];
        for (input, shown) in cases {
            assert_eq!(t(input).to_string(), shown, "{input}");
            assert_eq!(t(shown), t(input));
        }
        let before = t("1969-12-31T23:59:59.25Z");
        assert_eq!(before.unix_seconds(), -1);
        assert_eq!(before.subsec_nanos(), 250_000_000);
        assert_eq!(before.hour().index(), -1);
    }

    #[test]
    fn from_system_time() {
        use std::time::Duration;
        let after = UNIX_EPOCH + Duration::new(1_714_568_400, 7);
        assert_eq!(
            UtcTime::from_system_time(after),
            UtcTime::from_unix(1_714_568_400, 7)
        );
        let before = UNIX_EPOCH - Duration::new(1, 250_000_000);
        assert_eq!(
            UtcTime::from_system_time(before),
            UtcTime::from_unix(-2, 750_000_000)
        );
        let whole = UNIX_EPOCH - Duration::from_secs(3600);
        assert_eq!(
            UtcTime::from_system_time(whole).map(UtcTime::hour),
            Hour::from_index(-1)
        );
        assert_eq!(
            UtcTime::from_system_time(UNIX_EPOCH),
            UtcTime::from_unix(0, 0)
        );
    }

    // ---- parse_time -----------------------------------------------------

    #[test]
    fn parse_time_accepts_each_form() {
        let may1 = 1_714_521_600; // 2024-05-01T00:00:00Z
        let cases: &[(&str, i64, u32)] = &[
            ("2024-05-01", may1, 0),
            ("2024-05-01T13", may1 + 13 * 3600, 0),
            ("2024-05-01 13", may1 + 13 * 3600, 0),
            ("2024-05-01t13", may1 + 13 * 3600, 0),
            ("2024-05-01T00", may1, 0),
            ("2024-05-01T23", may1 + 23 * 3600, 0),
            ("2024-05-01T13:20:00Z", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01t13:20:00z", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01 13:20:00Z", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01T15:20:00+02:00", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01T08:20:00-05:00", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01T13:20:00+00:00", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01T13:20:00-00:00", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01T18:50:00+05:30", may1 + 13 * 3600 + 1200, 0),
            ("2024-05-01T13:20:00.5Z", may1 + 13 * 3600 + 1200, 500_000_000),
            ("2024-05-01T13:20:00.123Z", may1 + 48_000, 123_000_000),
            ("2024-05-01T13:20:00.123456789Z", may1 + 48_000, 123_456_789),
            // More than nanosecond precision is truncated.
            ("2024-05-01T13:20:00.1234567899Z", may1 + 48_000, 123_456_789),
            ("2024-05-01T13:59:59.999999999Z", may1 + 50_399, 999_999_999),
            // Offsets move across days, months and a leap day.
            ("2024-05-01T00:30:00+01:00", may1 - 1800, 0),
            ("2024-04-30T23:30:00-01:00", may1 + 1800, 0),
            ("2024-03-01T00:30:00+01:00", 1_709_249_400, 0),
            ("2024-12-31T23:59:59-23:59", 1_735_775_939, 0),
        ];
        for &(input, secs, nanos) in cases {
            let got = parse_time(input).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (got.unix_seconds(), got.subsec_nanos()),
                (secs, nanos),
                "{input}"
            );
        }
        assert_eq!(t("2024-03-01T00:30:00+01:00").hour(), h(2024, 2, 29, 23));
        assert_eq!(t("2024-12-31T23:59:59-23:59").hour(), h(2025, 1, 1, 23));
    }

    /// What a rejected time should say.
    #[derive(Debug)]
    enum Want {
        /// [`PrefixError::TimeSyntax`].
        Syntax,
        /// [`PrefixError::TimeField`] for this field.
        Field(&'static str),
        /// [`PrefixError::TimeOutOfRange`].
        OutOfRange,
    }

    #[test]
    fn parse_time_rejects() {
        use Want::*;
        let cases: &[(&str, Want)] = &[
            ("", Syntax),
            ("2024", Syntax),
            ("2024-05", Syntax),
            ("2024-5-01", Syntax),
            ("2024-05-1", Syntax),
            ("24-05-01", Syntax),
            ("2024/05/01", Syntax),
            ("20240501", Syntax),
            (" 2024-05-01", Syntax),
            ("2024-05-01 ", Syntax),
            ("2024-05-01x", Syntax),
            ("2024-05-01T", Syntax),
            ("2024-05-01T1", Syntax),
            ("2024-05-01T13Z", Syntax),
            ("2024-05-01T13:", Syntax),
            ("2024-05-01T13:20", Syntax),
            ("2024-05-01T13:20Z", Syntax),
            ("2024-05-01T13:20:00", Syntax),
            ("2024-05-01T13:20:0Z", Syntax),
            ("2024-05-01T13:20:00.Z", Syntax),
            ("2024-05-01T13:20:00,5Z", Syntax),
            ("2024-05-01T13:20:00+0200", Syntax),
            ("2024-05-01T13:20:00+02", Syntax),
            ("2024-05-01T13:20:00 +02:00", Syntax),
            ("2024-05-01T13:20:00ZZ", Syntax),
            ("2024-05-01T13:20:00Z ", Syntax),
            ("2024-05-01T13:20:00UTC", Syntax),
            ("+2024-05-01", Syntax),
            ("２０２４-05-01", Syntax),
            ("2024-05-01T13:20:00+02:0ü", Syntax),
            ("2024-0😀-01", Syntax),
            ("0000-01-01", Field("year")),
            ("2024-00-01", Field("month")),
            ("2024-13-01", Field("month")),
            ("2024-05-00", Field("day of 2024-05")),
            ("2024-05-32", Field("day of 2024-05")),
            ("2024-04-31", Field("day of 2024-04")),
            ("2024-02-30", Field("day of 2024-02")),
            ("2023-02-29", Field("day of 2023-02")),
            ("2100-02-29", Field("day of 2100-02")),
            ("2024-05-01T24", Field("hour")),
            ("2024-05-01 99", Field("hour")),
            ("2024-05-01T13:60:00Z", Field("minute")),
            ("2024-05-01T13:20:60Z", Field("second")),
            ("2024-05-01T13:20:00+24:00", Field("offset hour")),
            ("2024-05-01T13:20:00-02:60", Field("offset minute")),
            ("0001-01-01T00:30:00+01:00", OutOfRange),
            ("9999-12-31T23:59:59-01:00", OutOfRange),
        ];
        for (input, want) in cases {
            let err = parse_time(input).expect_err(input);
            let message = err.to_string();
            match (want, &err) {
                (Syntax, PrefixError::TimeSyntax { input: i, .. })
                | (OutOfRange, PrefixError::TimeOutOfRange { input: i }) => {
                    assert_eq!(i, input);
                }
                (Field(name), PrefixError::TimeField { field, .. }) => {
                    assert_eq!(field, name, "{input}");
                }
                _ => panic!("{input}: wanted {want:?}, got {err:?}"),
            }
            assert!(message.contains(&format!("`{input}`")), "{message}");
            if !matches!(want, OutOfRange) {
                assert!(message.contains("accepted forms"), "{message}");
            }
        }
        let message = parse_time("2023-02-29").unwrap_err().to_string();
        assert!(message.contains("day of 2023-02 is 29, not 1 to 28"));
        let message = parse_time("2024-05-01T13:20:00").unwrap_err();
        assert!(message.to_string().contains("needs a UTC offset"));
    }

    // ---- ranges ---------------------------------------------------------

    #[test]
    fn range_floors_both_ends() {
        let cases = [
            ("2024-05-01T13", "2024-05-01T14", h(2024, 5, 1, 13), 1),
            ("2024-05-01T13:20:00Z", "2024-05-01T14", h(2024, 5, 1, 13), 1),
            (
                "2024-05-01T13:20:00Z",
                "2024-05-01T14:20:00Z",
                h(2024, 5, 1, 13),
                1,
            ),
            (
                "2024-05-01T13:59:59.999Z",
                "2024-05-01T14:00:00.001Z",
                h(2024, 5, 1, 13),
                1,
            ),
            (
                "2024-05-01T13:20:00Z",
                "2024-05-01T13:40:00Z",
                h(2024, 5, 1, 13),
                0,
            ),
            ("2024-05-01", "2024-05-02", h(2024, 5, 1, 0), 24),
            ("2024-02-28", "2024-03-01", h(2024, 2, 28, 0), 48),
            ("2023-02-28", "2023-03-01", h(2023, 2, 28, 0), 24),
            ("2024-01-01", "2025-01-01", h(2024, 1, 1, 0), 366 * 24),
            ("2100-01-01", "2101-01-01", h(2100, 1, 1, 0), 365 * 24),
            (
                "2024-05-01T15:20:00+02:00",
                "2024-05-01T16:00:00+02:00",
                h(2024, 5, 1, 13),
                1,
            ),
        ];
        for (from, to, start, len) in cases {
            let range = HourRange::parse(from, to).unwrap();
            assert_eq!(range, HourRange::new(t(from), t(to)).unwrap());
            assert_eq!(range.start(), start, "{from}..{to}");
            assert_eq!(range.len(), len, "{from}..{to}");
            assert_eq!(range.is_empty(), len == 0);
            assert_eq!(range.hours().count() as u64, len);
            assert_eq!(range.hours().next(), (len > 0).then_some(start));
            assert_eq!(
                range.end().index() - range.start().index(),
                len as i64
            );
        }
    }

    #[test]
    fn range_rejects_empty_and_reversed() {
        let cases = [
            ("2024-05-01T13", "2024-05-01T13"),
            ("2024-05-01T13", "2024-05-01T13:00:00Z"),
            ("2024-05-01T14", "2024-05-01T13"),
            ("2024-05-01T15:00:00+02:00", "2024-05-01T13"),
            ("2024-05-02", "2024-05-01"),
        ];
        for (from, to) in cases {
            let err = HourRange::parse(from, to).unwrap_err();
            assert!(matches!(err, PrefixError::EmptyRange { .. }));
            let message = err.to_string();
            assert!(
                message.contains(from) && message.contains(to),
                "{message}"
            );
            let err = HourRange::new(t(from), t(to)).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(&t(from).to_string())
                    && message.contains(&t(to).to_string()),
                "{message}"
            );
        }
        // A bad end is reported before the order is checked.
        assert!(matches!(
            HourRange::parse("2024-05-01", "2024-02-30"),
            Err(PrefixError::TimeField { .. })
        ));
    }

    #[test]
    fn adjacent_ranges_tile() {
        let points = [
            "2024-02-28T22:10:00Z",
            "2024-02-29",
            "2024-02-29T00:00:00.000000001Z",
            "2024-02-29T00:59:59Z",
            "2024-02-29T13",
            "2024-02-29T13:20:00Z",
            "2024-02-29T13:40:00Z",
            "2024-03-01T00:30:00+01:00",
            "2024-03-01T02",
        ];
        for (i, a) in points.iter().enumerate() {
            for (j, b) in points.iter().enumerate().skip(i + 1) {
                for c in points.iter().skip(j + 1) {
                    assert_tiles(t(a), t(b), t(c));
                }
            }
        }
    }

    /// Asserts that `[a, b)` and `[b, c)` partition `[a, c)`, hour by hour.
    fn assert_tiles(a: UtcTime, b: UtcTime, c: UtcTime) {
        let ab = HourRange::new(a, b).unwrap();
        let bc = HourRange::new(b, c).unwrap();
        let ac = HourRange::new(a, c).unwrap();
        let joined: Vec<Hour> = ab.hours().chain(bc.hours()).collect();
        let whole: Vec<Hour> = ac.hours().collect();
        assert_eq!(joined, whole, "{a} {b} {c}");
        assert_eq!(ab.len() + bc.len(), ac.len());
        for hour in ac.hours() {
            assert!(ab.contains(hour) != bc.contains(hour), "{hour}");
        }
    }

    /// The naive rule: an hour is selected when its end is in `(from, to]`.
    fn naive_selects(from: UtcTime, to: UtcTime, hour: Hour) -> bool {
        let end = (hour.index() + 1) * SECS_PER_HOUR;
        let end = UtcTime { secs: end, nanos: 0 };
        from < end && end <= to
    }

    /// Instants within a few days of 2024-02-28, to the nanosecond.
    fn instant() -> impl Strategy<Value = UtcTime> {
        (0i64..4 * SECS_PER_DAY, prop_oneof![Just(0u32), 0..NANOS_PER_SEC])
            .prop_map(|(offset, nanos)| UtcTime {
                secs: t("2024-02-28").secs + offset,
                nanos,
            })
    }

    /// Any valid hour.
    fn any_hour() -> impl Strategy<Value = Hour> {
        (MIN_INDEX..=MAX_INDEX).prop_map(Hour)
    }

    proptest! {
        #[test]
        fn prop_tiles(mut v in proptest::collection::vec(instant(), 3)) {
            v.sort();
            v.dedup();
            if let &[a, b, c] = v.as_slice() {
                assert_tiles(a, b, c);
            }
        }

        #[test]
        fn prop_range_matches_naive(a in instant(), b in instant()) {
            let (from, to) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(from < to);
            let range = HourRange::new(from, to).unwrap();
            let around = from.hour().index() - 2..=to.hour().index() + 2;
            for hour in around.map(Hour) {
                prop_assert_eq!(
                    range.contains(hour),
                    naive_selects(from, to, hour),
                    "{} {} {}", from, to, hour
                );
            }
        }

        #[test]
        fn prop_calendar_round_trip(hour in any_hour()) {
            let back = Hour::from_ymdh(
                hour.year(), hour.month(), hour.day(), hour.hour(),
            );
            prop_assert_eq!(back, Some(hour));
            prop_assert_eq!(t(&hour.to_string()).hour(), hour);
        }

        #[test]
        fn prop_time_display_round_trip(
            secs in MIN_INDEX * SECS_PER_HOUR..(MAX_INDEX + 1) * SECS_PER_HOUR,
            nanos in prop_oneof![Just(0u32), 0..NANOS_PER_SEC],
        ) {
            let time = UtcTime::from_unix(secs, nanos).unwrap();
            prop_assert_eq!(t(&time.to_string()), time);
        }

        #[test]
        fn prop_parse_time_never_panics(s in "[0-9T:+\\-.Zz ]{0,40}|\\PC{0,20}") {
            let _ = parse_time(&s);
        }
    }

    // ---- templates ------------------------------------------------------

    const SUFFIX: &str = "stream-1-2024-02-29-07-05-09-0b1c-4d2e";

    #[test]
    fn templates_render() {
        let hour = h(2024, 2, 29, 7);
        let cases = [
            (
                "app-logs/from_CloudWatchLogs/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
                "app-logs/from_CloudWatchLogs/2024/02/29/07/",
                "app-logs/from_CloudWatchLogs/",
            ),
            (
                "logs/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
                "logs/year=2024/month=02/day=29/hour=07/",
                "logs/year=",
            ),
            (
                "!{timestamp:yyyy-MM-dd}/!{timestamp:HH}/",
                "2024-02-29/07/",
                "",
            ),
            (
                "dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/",
                "dt=2024-02-29/h=07/",
                "dt=",
            ),
            ("!{timestamp:yyyy/MM/dd/HH/}", "2024/02/29/07/", ""),
            ("x/!{timestamp:'logs/'yyyy/MM/dd/HH}/", "x/logs/2024/02/29/07/", "x/logs/"),
            (
                "x/!{timestamp:yyyy}/!{timestamp:yyyy-MM-dd-HH}/",
                "x/2024/2024-02-29-07/",
                "x/",
            ),
            (
                "!{timestamp:yyyy''MM'o''clock'dd:HH}",
                "2024'02o'clock29:07",
                "",
            ),
            (
                "ü 😀/!{timestamp:yyyy/MM/dd/HH}/ü",
                "ü 😀/2024/02/29/07/ü",
                "ü 😀/",
            ),
            ("!{timestamp:yyyyMMddHH}", "2024022907", ""),
            ("!{timestamp:'T'HH'/'dd.MM.yyyy}/", "T07/29.02.2024/", "T"),
            ("a}b{c!/!{timestamp:yyyy/MM/dd/HH}", "a}b{c!/2024/02/29/07", "a}b{c!/"),
            // No expression at all: Firehose appends yyyy/MM/dd/HH/.
            ("logs/", "logs/2024/02/29/07/", "logs/"),
            ("", "2024/02/29/07/", ""),
        ];
        for (template, rendered, static_prefix) in cases {
            let parsed = PrefixTemplate::parse(template)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.render(hour), rendered, "{template}");
            assert_eq!(parsed.static_prefix(), static_prefix, "{template}");
            assert!(rendered.starts_with(parsed.static_prefix()));
            assert_eq!(parsed.as_str(), template);
            assert_eq!(
                parsed.to_string().parse::<PrefixTemplate>(),
                Ok(parsed.clone())
            );
            let key = format!("{rendered}{SUFFIX}");
            assert_eq!(hour_of_key(&parsed, &key), Some(hour), "{template}");
            assert_eq!(hour_of_key(&parsed, rendered), Some(hour));
            for other in
                [Hour::MIN, h(1999, 12, 31, 23), h(2100, 3, 1, 0), Hour::MAX]
            {
                let text = parsed.render(other);
                assert_eq!(text.len(), rendered.len());
                assert_eq!(hour_of_key(&parsed, &text), Some(other));
            }
        }
    }

    #[test]
    fn firehose_default_template() {
        let hour = h(2024, 5, 1, 13);
        let cases = [
            (
                "app-logs/from_CloudWatchLogs/",
                "app-logs/from_CloudWatchLogs/2024/05/01/13/",
            ),
            ("", "2024/05/01/13/"),
            ("myprefix", "myprefix2024/05/01/13/"),
            ("odd!{x}/", "odd!{x}/2024/05/01/13/"),
        ];
        for (prefix, rendered) in cases {
            let template = PrefixTemplate::firehose_default(prefix);
            assert_eq!(template.render(hour), rendered);
            assert_eq!(template.static_prefix(), prefix);
            assert_eq!(hour_of_key(&template, rendered), Some(hour));
        }
        let default = PrefixTemplate::firehose_default("app-logs/");
        assert_eq!(default.as_str(), "app-logs/!{timestamp:yyyy/MM/dd/HH/}");
        assert_eq!(
            PrefixTemplate::parse(default.as_str()).unwrap().render(hour),
            default.render(hour)
        );
        assert_eq!(
            PrefixTemplate::parse("app-logs/").unwrap().render(hour),
            default.render(hour)
        );
    }

    /// What a rejected template should say.
    #[derive(Debug)]
    enum Bad {
        /// [`PrefixError::TemplateUnterminated`] at this byte.
        Unterminated(usize),
        /// [`PrefixError::TemplateExpression`] naming this expression.
        Expression(&'static str),
        /// [`PrefixError::TemplatePattern`] whose problem mentions this.
        Pattern(&'static str, &'static str),
        /// [`PrefixError::TemplateMissingFields`] listing these.
        Missing(&'static str),
    }

    #[test]
    fn templates_rejected() {
        use Bad::*;
        let full = "/!{timestamp:yyyy/MM/dd/HH}/";
        let cases: Vec<(String, Bad)> = vec![
            ("logs/!{timestamp:yyyy".into(), Unterminated(5)),
            ("logs/!{".into(), Unterminated(5)),
            (format!("{full}!{{timestamp:HH"), Unterminated(full.len())),
            (
                format!("!{{firehose:random-string}}{full}"),
                Expression("!{firehose:random-string}"),
            ),
            (
                format!("{full}!{{firehose:error-output-type}}"),
                Expression("!{firehose:error-output-type}"),
            ),
            (
                format!("!{{partitionKeyFromQuery:customer}}{full}"),
                Expression("!{partitionKeyFromQuery:customer}"),
            ),
            (
                format!("!{{partitionKeyFromLambda:x}}{full}"),
                Expression("!{partitionKeyFromLambda:x}"),
            ),
            (
                format!("!{{Timestamp:yyyy}}{full}"),
                Expression("!{Timestamp:yyyy}"),
            ),
            (format!("!{{foo:bar}}{full}"), Expression("!{foo:bar}")),
            (format!("!{{timestamp}}{full}"), Expression("!{timestamp}")),
            (format!("!{{}}{full}"), Expression("!{}")),
            (
                "!{timestamp:yyyy/MM/dd/HH/mm}".into(),
                Pattern("!{timestamp:yyyy/MM/dd/HH/mm}", "`mm`"),
            ),
            (
                "!{timestamp:yyyy/MM/dd/HH/ss}".into(),
                Pattern("!{timestamp:yyyy/MM/dd/HH/ss}", "`ss`"),
            ),
            (
                "!{timestamp:YYYY/MM/dd/HH}".into(),
                Pattern("!{timestamp:YYYY/MM/dd/HH}", "week-based"),
            ),
            (
                "!{timestamp:uuuu/MM/dd/HH}".into(),
                Pattern("!{timestamp:uuuu/MM/dd/HH}", "`uuuu`"),
            ),
            (
                "!{timestamp:yy/MM/dd/HH}".into(),
                Pattern("!{timestamp:yy/MM/dd/HH}", "`yy`"),
            ),
            (
                "!{timestamp:yyyyy/MM/dd/HH}".into(),
                Pattern("!{timestamp:yyyyy/MM/dd/HH}", "`yyyyy`"),
            ),
            (
                "!{timestamp:yyyy/M/dd/HH}".into(),
                Pattern("!{timestamp:yyyy/M/dd/HH}", "`M`"),
            ),
            (
                "!{timestamp:yyyy/MMM/dd/HH}".into(),
                Pattern("!{timestamp:yyyy/MMM/dd/HH}", "`MMM`"),
            ),
            (
                "!{timestamp:yyyy/MM/DD/HH}".into(),
                Pattern("!{timestamp:yyyy/MM/DD/HH}", "day of the year"),
            ),
            (
                "!{timestamp:yyyy/MM/dd/hh}".into(),
                Pattern("!{timestamp:yyyy/MM/dd/hh}", "`hh`"),
            ),
            (
                "!{timestamp:yyyy/MM/dd/HH/x}".into(),
                Pattern("!{timestamp:yyyy/MM/dd/HH/x}", "`x`"),
            ),
            (
                "!{timestamp:yyyy/MM/dd/HH'}".into(),
                Pattern("!{timestamp:yyyy/MM/dd/HH'}", "not closed"),
            ),
            (
                "!{timestamp:[yyyy]/MM/dd/HH}".into(),
                Pattern("!{timestamp:[yyyy]/MM/dd/HH}", "`[`"),
            ),
            (
                "!{timestamp:yyyy#MM/dd/HH}".into(),
                Pattern("!{timestamp:yyyy#MM/dd/HH}", "`#`"),
            ),
            (
                "!{timestamp:{yyyy/MM/dd/HH}".into(),
                Pattern("!{timestamp:{yyyy/MM/dd/HH}", "`{`"),
            ),
            (
                format!("!{{timestamp:}}{full}"),
                Pattern("!{timestamp:}", "empty"),
            ),
            ("logs/!{timestamp:yyyy/MM/dd}/".into(), Missing("HH")),
            ("logs/!{timestamp:HH}/".into(), Missing("yyyy, MM, dd")),
            (
                "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:HH}".into(),
                Missing("dd"),
            ),
            (
                "!{timestamp:'yyyy/MM/dd/HH'}".into(),
                Missing("yyyy, MM, dd, HH"),
            ),
        ];
        for (template, bad) in &cases {
            let err = PrefixTemplate::parse(template).expect_err(template);
            match (bad, &err) {
                (
                    Unterminated(want),
                    PrefixError::TemplateUnterminated { at, .. },
                ) => {
                    assert_eq!(at, want, "{template}");
                }
                (
                    Expression(want),
                    PrefixError::TemplateExpression { expression, .. },
                ) => assert_eq!(expression, want),
                (
                    Pattern(want, says),
                    PrefixError::TemplatePattern {
                        expression, problem, ..
                    },
                ) => {
                    assert_eq!(expression, want);
                    assert!(problem.contains(says), "{problem}");
                }
                (
                    Missing(want),
                    PrefixError::TemplateMissingFields { missing, .. },
                ) => {
                    assert_eq!(missing, want);
                }
                _ => panic!("{template}: wanted {bad:?}, got {err:?}"),
            }
            let message = err.to_string();
            assert!(message.contains(&format!("`{template}`")), "{message}");
            assert!(message.contains("supported: "), "{message}");
        }
    }

    #[test]
    fn hour_of_key_rejects_other_keys() {
        let default = PrefixTemplate::firehose_default("logs/");
        let repeated = PrefixTemplate::parse(
            "!{timestamp:yyyy}/!{timestamp:yyyy-MM-dd}/!{timestamp:HH}/",
        )
        .unwrap();
        let cases = [
            (&default, "logs/2024/02/29/07"),
            (&default, "other/2024/02/29/07/x"),
            (&default, "logs/2024/02/30/07/x"),
            (&default, "logs/2023/02/29/07/x"),
            (&default, "logs/2024/13/01/07/x"),
            (&default, "logs/2024/02/29/24/x"),
            (&default, "logs/0000/01/01/00/x"),
            (&default, "logs/2024/2/29/07/x"),
            (&default, "logs/2024/+2/29/07/x"),
            (&default, "logs/2024/-2/29/07/x"),
            (&default, "logs/2024/ü/29/07/x"),
            (&default, "logs/20😀/02/29/07/x"),
            (&default, "logs/2024/02/29/0"),
            (&default, "logs/"),
            (&default, ""),
            (&repeated, "2024/2025-02-28/07/"),
            (&repeated, "2024/2024-02-28/07"),
        ];
        for (template, key) in cases {
            assert_eq!(hour_of_key(template, key), None, "{key}");
        }
        assert_eq!(
            hour_of_key(&repeated, "2024/2024-02-28/07/x"),
            Some(h(2024, 2, 28, 7))
        );
    }

    #[test]
    fn hour_prefixes_cover_range_in_order() {
        let template = PrefixTemplate::firehose_default("p/");
        let range =
            HourRange::parse("2024-02-28T22:15:00Z", "2024-03-01T01:59:59Z")
                .unwrap();
        let prefixes: Vec<String> =
            hour_prefixes(&template, range.start(), range.end()).collect();
        assert_eq!(prefixes.len(), 27);
        assert_eq!(
            prefixes.first().map(String::as_str),
            Some("p/2024/02/28/22/")
        );
        assert_eq!(
            prefixes.get(2).map(String::as_str),
            Some("p/2024/02/29/00/")
        );
        assert_eq!(
            prefixes.get(25).map(String::as_str),
            Some("p/2024/02/29/23/")
        );
        assert_eq!(
            prefixes.last().map(String::as_str),
            Some("p/2024/03/01/00/")
        );
        let mut sorted = prefixes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, prefixes, "in order, each once");
        let hours: Vec<Hour> = prefixes
            .iter()
            .map(|p| hour_of_key(&template, p).unwrap())
            .collect();
        assert_eq!(hours, range.hours().collect::<Vec<_>>());

        let one = h(2024, 5, 1, 13);
        assert_eq!(hour_prefixes(&template, one, one).count(), 0);
        assert_eq!(
            hour_prefixes(&template, one.next().unwrap(), one).count(),
            0
        );
        assert_eq!(hour_prefixes(&template, Hour::MAX, Hour::MAX).count(), 0);
    }

    /// Templates for the property tests.
    fn any_template() -> impl Strategy<Value = PrefixTemplate> {
        prop_oneof![
            Just(PrefixTemplate::firehose_default("app-logs/")),
            Just(PrefixTemplate::parse(
                "l/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
            ).unwrap()),
            Just(PrefixTemplate::parse("!{timestamp:yyyyMMddHH}").unwrap()),
            Just(PrefixTemplate::parse(
                "ü/!{timestamp:HH' 'dd'.'MM'.'yyyy}/!{timestamp:yyyy}"
            ).unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn prop_render_parse_round_trip(
            template in any_template(),
            hour in any_hour(),
            suffix in "\\PC{0,30}",
        ) {
            let key = format!("{}{suffix}", template.render(hour));
            prop_assert_eq!(hour_of_key(&template, &key), Some(hour));
            prop_assert!(key.starts_with(template.static_prefix()));
        }

        #[test]
        fn prop_hour_of_key_never_panics(
            template in any_template(),
            key in "\\PC{0,40}|[0-9/ü]{0,40}",
        ) {
            if let Some(hour) = hour_of_key(&template, &key) {
                prop_assert!(key.starts_with(&template.render(hour)));
            }
        }

        #[test]
        fn prop_template_parse_never_panics(s in "[!{}:'a-zA-Z/ü]{0,40}") {
            if let Ok(template) = PrefixTemplate::parse(&s) {
                let hour = h(2024, 2, 29, 7);
                prop_assert_eq!(
                    hour_of_key(&template, &template.render(hour)),
                    Some(hour)
                );
            }
        }
    }

    // ---- event keys -----------------------------------------------------

    #[test]
    fn event_keys_decode() {
        let cases = [
            ("", ""),
            ("plain/key", "plain/key"),
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("a%2bb", "a+b"),
            ("++", "  "),
            ("%20", " "),
            ("%25", "%"),
            ("%2525", "%25"),
            ("%25+", "% "),
            (
                "app-logs/from_CloudWatchLogs/2024/05/01/13/x%3Ay+z",
                "app-logs/from_CloudWatchLogs/2024/05/01/13/x:y z",
            ),
            ("%C3%BC", "ü"),
            ("%c3%bc", "ü"),
            ("ü", "ü"),
            ("%F0%9F%98%80", "😀"),
            ("😀+%F0%9F%98%80", "😀 😀"),
            ("a*b(c)!'", "a*b(c)!'"),
            ("%2F%2f/", "///"),
            ("%00", "\0"),
        ];
        for (encoded, key) in cases {
            assert_eq!(
                decode_event_key(encoded).as_deref(),
                Ok(key),
                "{encoded}"
            );
        }
    }

    #[test]
    fn event_keys_rejected() {
        let escapes = [
            ("%", 0),
            ("%2", 0),
            ("a%2", 1),
            ("%G1", 0),
            ("%1G", 0),
            ("ok%2Bthen%", 9),
            ("%%41", 0),
            ("%+1", 0),
            ("%ü", 0),
            ("%-1", 0),
        ];
        for (encoded, at) in escapes {
            assert_eq!(
                decode_event_key(encoded),
                Err(PrefixError::EventKeyEscape {
                    key: encoded.to_owned(),
                    at
                }),
                "{encoded}"
            );
        }
        let invalid = [
            ("%FF", 0),
            ("ab%C3", 2),
            ("a+%C3%28", 2),
            ("%F0%9F%98", 0),
            ("x%C0%AF", 1),
            ("%ED%A0%80", 0),
            ("ü%80", 2),
        ];
        for (encoded, at) in invalid {
            let err = decode_event_key(encoded).unwrap_err();
            assert_eq!(
                err,
                PrefixError::EventKeyUtf8 { key: encoded.to_owned(), at },
                "{encoded}"
            );
            assert!(err.to_string().contains(encoded));
        }
    }

    #[test]
    fn event_keys_encode() {
        let cases = [
            ("", ""),
            ("a b", "a+b"),
            ("a+b", "a%2Bb"),
            ("%", "%25"),
            ("x:y z", "x%3Ay+z"),
            ("ü", "%C3%BC"),
            ("😀", "%F0%9F%98%80"),
            ("AZaz09-_.~/", "AZaz09-_.~/"),
            ("a*b(c)!'", "a%2Ab%28c%29%21%27"),
            ("\0\n", "%00%0A"),
            (
                "app-logs/from_CloudWatchLogs/2024/05/01/13/x:y z",
                "app-logs/from_CloudWatchLogs/2024/05/01/13/x%3Ay+z",
            ),
        ];
        for (key, encoded) in cases {
            assert_eq!(encode_event_key(key), encoded, "{key}");
            assert_eq!(decode_event_key(encoded).as_deref(), Ok(key));
        }
    }

    proptest! {
        #[test]
        fn prop_event_key_round_trip(key in any::<String>()) {
            let encoded = encode_event_key(&key);
            prop_assert!(encoded.is_ascii());
            prop_assert_eq!(decode_event_key(&encoded), Ok(key));
        }

        #[test]
        fn prop_event_key_round_trip_special(key in "[ +%/aü😀~*.]{0,20}") {
            prop_assert_eq!(decode_event_key(&encode_event_key(&key)), Ok(key));
        }

        #[test]
        fn prop_decode_never_panics(s in "[%+0-9a-fA-Gü ]{0,20}|\\PC{0,20}") {
            if let Ok(key) = decode_event_key(&s) {
                prop_assert_eq!(
                    decode_event_key(&encode_event_key(&key)),
                    Ok(key)
                );
            }
        }
    }
}
