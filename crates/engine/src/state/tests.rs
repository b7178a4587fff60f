//! The state machine on its own: inputs fed by hand, effects checked. No libvirt connection,
//! no async runtime.

use super::*;

#[test]
fn desktop_names_are_short_and_sort_by_time() {
    let a = desktop_name("office", 1_795_549_401_000_000);
    let b = desktop_name("office", 1_795_549_401_000_001);
    assert_eq!(a.len(), "dp-office-".len() + 10);
    assert!(a < b, "{a} < {b}");
    assert!(deskpool_core::policy::names::check_name(&a).is_ok());
}
