//! `disconnect_grace_secs`: read from the file, 0 by default, refused at its position outside
//! 0..86400, with the words the editor and `set_policy` use (one rule, `Policy::problems`).

use super::tests::{MINIMAL, assert_one_error, parse};
use deskpool_core::policy::rules;

#[test]
fn the_disconnect_grace_reads_and_defaults_to_none() {
    let fleet = parse(MINIMAL).unwrap();
    assert_eq!(fleet.classes[0].policy.disconnect_grace_secs, 0);
    let fleet = parse(&format!("{MINIMAL}disconnect_grace_secs = 300\n")).unwrap();
    assert_eq!(fleet.classes[0].policy.disconnect_grace_secs, 300);
    let fleet = parse(&format!("{MINIMAL}disconnect_grace_secs = 86400\n")).unwrap();
    assert_eq!(fleet.classes[0].policy.disconnect_grace_secs, 86_400);
}

#[test]
fn a_disconnect_grace_out_of_range_is_refused_at_its_value() {
    // MINIMAL is 14 lines; the key is line 15, its value at column 25.
    let e = assert_one_error(
        &format!("{MINIMAL}disconnect_grace_secs = 86401\n"),
        15,
        25,
        "86400",
    );
    assert!(e.message.contains("disconnect_grace_secs"), "{e}");
    assert_one_error(
        &format!("{MINIMAL}disconnect_grace_secs = -1\n"),
        15,
        25,
        "",
    );
    assert_one_error(
        &format!("{MINIMAL}disconnect_grace_secs = \"5m\"\n"),
        15,
        25,
        "",
    );
    // The core's check, which the editor and set_policy apply, draws the same line.
    let mut policy = parse(MINIMAL).unwrap().classes[0].policy.clone();
    policy.disconnect_grace_secs = 86_401;
    let problems = policy.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "disconnect_grace_secs");
    policy.disconnect_grace_secs = rules::DISCONNECT_GRACE_SECS.hi as u64;
    assert!(policy.problems().is_empty());
}
