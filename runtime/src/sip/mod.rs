//! The SIP core, sans-IO: messages parsed zero-copy over `bytes::Bytes`,
//! header values parsed on demand, and edits applied once when a message is
//! written. Nothing here does IO or knows about time.

pub mod edit;
pub mod header;
pub mod message;
pub mod uri;
pub mod values;

pub use edit::{EditError, Edits};
pub use header::HeaderName;
pub use message::{Framing, Header, Interest, Message, Method, Rejected, Span, StartLine};
