//! Time as an input: the one type through which the library learns what
//! time it is. Only the binary chooses the system clock; tests, `--at` and
//! export's read-back pass a fixed moment.

use std::time::SystemTime;

/// Where "now" comes from. The library never reads the clock by itself: the
/// caller says whether decisions are taken as of the system clock (read at
/// the moment of each decision) or as of a fixed moment (`--at`, tests,
/// export's read-back).
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock, read at each decision.
    System,
    /// A fixed moment.
    Fixed(SystemTime),
}

impl Clock {
    /// The moment a decision is taken as of.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

impl From<SystemTime> for Clock {
    fn from(t: SystemTime) -> Clock {
        Clock::Fixed(t)
    }
}
