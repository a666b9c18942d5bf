//! Bounded reading of every input file: captures, `--wfe` and `--history`
//! files, test files, rules files and directories. Inputs come from anywhere
//! (a rules directory is untrusted, a capture is whatever someone saved), so
//! one module decides what may be read and how much:
//!
//! - only regular files; a FIFO, a device or a socket is refused before a
//!   byte is read (a FIFO is opened non-blocking, so it cannot hang us);
//! - each file's size limit is enforced while reading, never taken from
//!   metadata (`/dev/zero` reports length 0);
//! - a directory is listed with a file budget, and its files are read under
//!   a total byte budget;
//! - text is UTF-8, with a leading byte-order mark dropped;
//! - a key written twice in one mapping is an error, in YAML ([`yaml`]) and
//!   in JSON ([`json`]).

mod dir;
mod error;
mod file;
pub mod json;
mod text;
pub mod yaml;

pub use dir::{list_dir, ByteBudget, Entry, EntryKind};
pub use error::InputError;
pub use file::{read_file, read_path, read_reader, read_text};
pub use text::{strip_bom, to_text};
