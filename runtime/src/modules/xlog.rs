//! xlog: logging with pseudo-variables (OpenSER 1.3's `xlog` module).
