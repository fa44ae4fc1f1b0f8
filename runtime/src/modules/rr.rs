//! rr: Record-Route and Route processing (OpenSER 1.3's `rr` module; RFC 3261 §16.4, §16.6).
