//! CloudWatch Logs filter patterns.
//!
//! STUB: this file is replaced on merge by the real parser and matcher.
//! It keeps the real API: every pattern parses and matches everything.

use std::fmt;

/// A compiled CloudWatch Logs filter pattern.
#[derive(Clone, Debug, Default)]
pub struct FilterPattern;

impl FilterPattern {
    /// Parses a filter pattern.
    ///
    /// # Errors
    ///
    /// A [`FilterError`] with the byte offset of the problem.
    pub fn parse(_pattern: &str) -> Result<FilterPattern, FilterError> {
        Ok(FilterPattern)
    }

    /// Whether matching needs the message parsed as JSON.
    #[must_use]
    pub fn needs_json(&self) -> bool {
        false
    }

    /// Whether `message` (with its JSON tape when it parsed) matches.
    #[must_use]
    pub fn matches(
        &self,
        _message: &str,
        _json: Option<simd_json::tape::Value<'_, '_>>,
    ) -> bool {
        true
    }
}

/// Why a filter pattern did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset in the pattern.
    pub offset: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for FilterError {}
