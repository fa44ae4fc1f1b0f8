//! uri: tests on URIs (OpenSER 1.3's `uri` module).
