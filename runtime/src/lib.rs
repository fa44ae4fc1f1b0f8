//! serc-runtime: the SIP core (parser, transports, transactions, modules) that
//! every proxy compiled by serc links against.
//!
//! Nothing is implemented yet: the runtime is built from issue 4 on (see
//! ARCHITECTURE.md). The crate exists so the workspace has its final shape.
