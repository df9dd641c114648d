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

    /// All recorded errors combined into one, or `Ok` when there were none.
    pub fn check(&self) -> syn::Result<()> {
        let mut errors = self
            .errors
            .borrow_mut()
            .drain(..)
            .collect::<Vec<_>>()
            .into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                errors.for_each(|e| first.combine(e));
                Err(first)
            }
        }
    }
}
