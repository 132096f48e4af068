//! UK local time, as the people using the console read and type it: the rule lives in the
//! domain (`domain::calendar`), which also judges whether a typed day is still to come.

pub use domain::calendar::{instant, local, today};
