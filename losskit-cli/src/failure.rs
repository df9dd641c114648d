//! The one way `losskit` reports a problem: a [`Failure`] becomes one line on stderr and
//! exit status 2. Messages repeat user-given names clipped to a readable length.

use std::borrow::Cow;

/// A problem to report: one line on stderr, exit status 2.
#[derive(Debug)]
pub struct Failure(pub String);

impl Failure {
    /// A failure with `message` (a line; newlines are replaced when it is printed).
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The line printed on stderr, without the program name: newlines become spaces and
    /// a message over [`MAX_LINE`] characters is clipped.
    pub fn line(&self) -> String {
        clipped(&self.0.replace(['\n', '\r'], " "), MAX_LINE).into_owned()
    }
}

/// What every subcommand returns: the text for stdout, or a [`Failure`].
pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// The longest message line `losskit` prints, in characters.
pub const MAX_LINE: usize = 2000;

/// The longest user-given name (a loss, a key, a command) a message repeats.
pub const MAX_NAME: usize = 64;

/// `text` cut to `max` characters, with an ellipsis where it was cut.
pub fn clipped(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// A user-given name as messages repeat it: at most [`MAX_NAME`] characters.
pub fn shown(name: &str) -> Cow<'_, str> {
    clipped(name, MAX_NAME)
}

/// The message for a panic's payload (a bug: the user is asked to report it).
pub fn internal_error(payload: &(dyn std::any::Any + Send)) -> Failure {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown cause");
    Failure(format!("internal error: {what} (please report this)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_counts_characters_not_bytes() {
        assert_eq!(clipped("abc", 3), "abc");
        assert_eq!(clipped("abcd", 3), "abc…");
        // `é` is two bytes: a byte count would cut inside it or keep too few
        assert_eq!(clipped("ééé", 2), "éé…");
    }

    #[test]
    fn a_line_has_no_newline_and_a_bounded_length() {
        let failure = Failure::new(format!("a\nb\r\nc {}", "x".repeat(3 * MAX_LINE)));
        let line = failure.line();
        assert!(line.starts_with("a b  c x"), "{line}");
        assert!(!line.contains(['\n', '\r']));
        assert_eq!(
            line.chars().count(),
            MAX_LINE + 1,
            "the cut plus the ellipsis"
        );
    }

    #[test]
    fn panic_payloads_of_both_kinds_are_named() {
        let text: Box<dyn std::any::Any + Send> = Box::new("index out of range");
        assert!(internal_error(text.as_ref())
            .0
            .contains("index out of range"));
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("bad state"));
        assert!(internal_error(owned.as_ref()).0.contains("bad state"));
        let other: Box<dyn std::any::Any + Send> = Box::new(7_u8);
        assert!(internal_error(other.as_ref()).0.contains("unknown cause"));
    }
}
