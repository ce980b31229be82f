//! The embedded backends: one SQLite file holds the webhook journal, the course links
//! and the revenue warehouse, so a new user runs Tollgate with no database server.
//! Each process opens its own connection; SQLite's WAL mode lets the starter and the
//! worker share the file.

mod db;
pub mod grants;
pub mod journal;
pub mod links;
pub mod warehouse;

pub use db::Db;
pub use grants::{Grants, Release};
pub use journal::{Appended, Journal, JournalEntry};
pub use links::Links;
pub use warehouse::Warehouse;
