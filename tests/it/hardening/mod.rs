//! Bad input and faults: each test pins one way the tool was broken from outside, and fails if
//! that way opens again.

mod daemon;
mod pipe;
mod policy;
mod props;
mod redaction;
mod store;
