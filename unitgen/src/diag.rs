//! Diagnostics: where in a unit file something is wrong, and what.
//!
//! Every error this crate reports about a unit file carries a [`Location`] (file, line, column,
//! all 1-based) so that `flotctl verify` and `flotilla-generator` can print compiler-style
//! `FILE:LINE:COL: error: MESSAGE` lines. Validation collects *all* problems of a file
//! ([`Diagnostics`]) instead of stopping at the first, because an operator fixing a unit wants
//! to see every mistake in one run.

use std::fmt;
use std::sync::Arc;

use crate::container::ContainerError;
use crate::fleet::FleetError;
use crate::name::NameError;
use crate::specifier::SpecifierError;
use crate::syntax::SyntaxError;
use crate::unit::SectionError;
use crate::words::WordsError;

/// A position in a unit file: file label, 1-based line and 1-based column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file's label as given to the parser (usually its path).
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl Location {
    /// A location in `file` at `line`:`column`.
    pub fn new(file: &Arc<str>, line: u32, column: u32) -> Location {
        Location {
            file: Arc::clone(file),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What is wrong: one variant per module of this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The unit file's syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A section the unit's type does not have.
    #[error(transparent)]
    Section(#[from] SectionError),
    /// The unit's name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A `%` specifier.
    #[error(transparent)]
    Specifier(#[from] SpecifierError),
    /// Quoting or escaping of a command line or word list.
    #[error(transparent)]
    Words(#[from] WordsError),
    /// The `[X-Fleet]` section.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// The `[Container]` section.
    #[error(transparent)]
    Container(#[from] ContainerError),
}

/// One problem at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub location: Location,
    /// What the problem is.
    pub problem: Problem,
}

impl Diagnostic {
    /// A diagnostic for `problem` at `location`.
    pub fn new(location: Location, problem: impl Into<Problem>) -> Diagnostic {
        Diagnostic {
            location,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.location, self.problem)
    }
}

impl std::error::Error for Diagnostic {}

/// All the problems found in one unit file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Records a problem.
    pub fn push(&mut self, location: Location, problem: impl Into<Problem>) {
        self.0.push(Diagnostic::new(location, problem));
    }

    /// Takes over every problem of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems in file order (by line, then column; stable for equal positions).
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort_by(|a, b| {
            (a.location.line, a.location.column).cmp(&(b.location.line, b.location.column))
        });
        self.0
    }

    /// Ok when empty, otherwise the sorted problems.
    pub fn into_result(self) -> Result<(), Vec<Diagnostic>> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.sorted())
        }
    }
}
