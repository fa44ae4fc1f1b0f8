//! textops: searching and editing the message text (OpenSER 1.3's `textops` module).
