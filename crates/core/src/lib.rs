//! What deskpool manages and decides, without I/O: desktop classes, hosts and policies
//! ([`policy`]), the fleet as observed ([`model`]), the domain XML deskpool writes and reads back
//! ([`xml`]), the demand forecast ([`demand`]), clocks ([`clock`]) and the planner ([`plan`]).
//! Every other crate builds on this one; it depends on none of them.

pub mod clock;
pub mod demand;
pub mod leadership;
pub mod ledger;
pub mod model;
pub mod plan;
pub mod policy;
pub mod readiness;
pub mod retry;
pub mod timings;
pub mod xml;
