//! The conformance tests, one function per rule, each generic over a [`StoreKit`](crate::kit::StoreKit). Call
//! them through [`conformance_tests!`](crate::conformance_tests), which writes a test for
//! each; a test panics when the store breaks its rule.

mod adoption;
mod binding;
mod clients;
mod common;
mod dpop;
mod lifetimes;
mod revocation;
mod rotation;

pub use self::adoption::*;
pub use self::binding::*;
pub use self::clients::*;
pub use self::dpop::*;
pub use self::lifetimes::*;
pub use self::revocation::*;
pub use self::rotation::*;
