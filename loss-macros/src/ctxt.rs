//! An accumulator for user-facing errors, so one compile reports all of them.

use std::cell::RefCell;

/// Collects [`syn::Error`]s during parsing, lowering and checking.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error and carries on.
    pub fn push(&self, err: syn::Error) {
        self.errors.borrow_mut().push(err);
    }

    /// Whether nothing went wrong so far.
    pub fn is_ok(&self) -> bool {
        self.errors.borrow().is_empty()
    }

    /// All recorded errors combined into one, in the order they were recorded, or `Ok`
    /// when there were none. Drains the context.
    pub fn check(&self) -> syn::Result<()> {
        let errors = std::mem::take(&mut *self.errors.borrow_mut());
        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                errors.for_each(|e| first.combine(e));
                Err(first)
            }
        }
    }

    /// The messages recorded so far, in order (for tests).
    #[cfg(test)]
    pub fn messages(&self) -> Vec<String> {
        self.errors
            .borrow()
            .iter()
            .flat_map(|e| e.clone().into_iter().map(|e| e.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn collects_every_error_in_order() {
        let cx = Ctxt::new();
        assert!(cx.is_ok());
        assert!(cx.check().is_ok());
        for msg in ["first", "second", "third"] {
            cx.push(syn::Error::new(Span::call_site(), msg));
        }
        assert!(!cx.is_ok());
        assert_eq!(cx.messages(), ["first", "second", "third"]);
        let combined = cx
            .check()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>());
        assert_eq!(
            combined,
            Some(vec!["first".into(), "second".into(), "third".into()])
        );
        // `check` drains: the context is clean again
        assert!(cx.is_ok());
        assert!(cx.check().is_ok());
    }

    #[test]
    fn compile_errors_carry_every_message() {
        let cx = Ctxt::new();
        cx.push(syn::Error::new(Span::call_site(), "one"));
        cx.push(syn::Error::new(Span::call_site(), "two"));
        let tokens = cx.check().err().map(|e| e.to_compile_error().to_string());
        let tokens = tokens.unwrap_or_default();
        assert_eq!(tokens.matches("compile_error").count(), 2, "{tokens}");
    }
}
