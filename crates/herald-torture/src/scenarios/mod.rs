//! One module per torture scenario; each returns its report (JSON) and whether every
//! invariant held.

pub mod chaos;
pub mod disk_full;
pub mod kill_loop;
pub mod pg_restart;
pub mod spool_full;
