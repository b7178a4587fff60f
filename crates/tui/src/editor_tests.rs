use super::*;

fn demo_form(class: &str) -> PolicyForm {
    let fleet = deskpool_config::demo_config(std::path::Path::new("/nowhere"));
    let inherits = deskpool_config::on_disk::demo_period_inheritance(class);
    PolicyForm::new(fleet.class(class).unwrap(), inherits)
}

fn set(form: &mut PolicyForm, key: &str, value: &str) {
    let at = form.fields.iter().position(|f| f.key == key).unwrap();
    form.fields[at].input = Input::new(value.into());
    form.make_own(key);
    form.follow_class_rule();
    form.revalidate();
}

fn ctrl(form: &mut PolicyForm, c: char) -> Option<String> {
    let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
    form.handle(&key, &TermEvent::Key(key))
}

#[test]
fn on_shutoff_is_an_editable_field_checked_as_typed() {
    let mut form = demo_form("office");
    let at = form
        .fields
        .iter()
        .position(|f| f.key == "on_shutoff")
        .unwrap();
    assert_eq!(form.fields[at].input.value(), "restart");
    set(&mut form, "on_shutoff", "recycle");
    assert_eq!(
        form.policy().map(|p| p.on_shutoff),
        Ok(ShutoffAction::Recycle)
    );
    assert!(form.is_dirty());
    set(&mut form, "on_shutoff", "reboot");
    assert!(form.policy().is_err());
    assert_eq!(form.problem_for("on_shutoff"), Some("restart or recycle"));
}

#[test]
fn a_policy_that_breaks_a_rule_names_the_field_in_the_error_and_the_form() {
    let mut form = demo_form("office");
    set(&mut form, "cap", "5");
    set(&mut form, "production", "50");
    let error = form.policy().unwrap_err();
    let (field, why) = error
        .problems
        .iter()
        .find(|(field, _)| field == "production")
        .expect("production is over the cap");
    assert_eq!(form.problem_for(field), Some(why.as_str()));
}

#[test]
fn an_inherited_period_buffer_follows_the_class_rule_until_edited() {
    // dev's period sets production and leaves its buffer to the class rule.
    let mut form = demo_form("dev");
    assert!(form.inherited("periods[1].buffer.ceiling"));
    assert!(!form.inherited("periods[1].production"));
    set(&mut form, "buffer.ceiling", "9");
    let policy = form.policy().unwrap();
    assert_eq!(policy.buffer.ceiling, 9);
    assert_eq!(
        policy.periods[0].buffer, policy.buffer,
        "the period still takes the class's buffer"
    );
    // Editing one buffer value makes the period's buffer its own, all three values.
    set(&mut form, "periods[1].buffer.floor", "3");
    assert!(!form.inherited("periods[1].buffer.ceiling"));
    set(&mut form, "buffer.ceiling", "8");
    let policy = form.policy().unwrap();
    assert_eq!(policy.periods[0].buffer.floor, 3);
    assert_eq!(policy.periods[0].buffer.ceiling, 9, "no longer follows");
    // ctrl-r on it gives it back to the class rule.
    form.cursor = form
        .fields
        .iter()
        .position(|f| f.key == "periods[1].buffer.percent")
        .unwrap();
    assert_eq!(ctrl(&mut form, 'r'), None);
    assert_eq!(form.policy().unwrap().periods[0].buffer, policy.buffer);
}

#[test]
fn a_new_period_overlaps_none_and_inherits_production_and_buffer() {
    let mut form = demo_form("dev");
    assert_eq!(ctrl(&mut form, 'n'), None);
    assert_eq!(form.periods(), 2);
    let policy = form.policy().expect("the new period fits");
    assert_eq!(policy.periods[1].production, policy.production);
    assert!(form.inherited("periods[2].production"));
    assert!(form.fields[form.cursor].label.starts_with("period 2"));
    // Each further one also finds room.
    for _ in 0..5 {
        assert_eq!(ctrl(&mut form, 'n'), None);
        assert!(form.policy().is_ok(), "{:?}", form.problems);
    }
}

#[test]
fn deleting_a_period_renumbers_the_ones_after_it_keeping_their_text() {
    let mut form = demo_form("dev");
    ctrl(&mut form, 'n');
    set(&mut form, "periods[2].to", "25:00");
    form.cursor = GENERAL_FIELDS; // period 1's first field
    ctrl(&mut form, 'd');
    assert_eq!(form.periods(), 1);
    let to = form
        .fields
        .iter()
        .find(|f| f.key == "periods[1].to")
        .unwrap();
    assert_eq!(to.label, "period 1 to");
    assert_eq!(to.input.value(), "25:00", "text that does not read is kept");
    assert!(form.problem_for("periods[1].to").is_some());
    assert_eq!(form.label_for("periods[1].to"), "period 1 to");
}

/// The form does not show events, but a save from it keeps them: the policy it builds
/// carries the loaded events, and the file keeps them as written.
#[test]
fn a_save_from_the_form_keeps_the_class_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deskpool.toml");
    let event = "[[classes.policy.events]]\nname = \"training\"\ndate = \"2026-01-05\"\n\
                 from = \"08:00\"\nto = \"09:00\"\nproduction = 50\n\n[[classes]]\n\
                 name = \"dev\"";
    let text =
        deskpool_config::demo_text(dir.path()).replacen("[[classes]]\nname = \"dev\"", event, 1);
    std::fs::write(&path, &text).unwrap();
    let fleet = deskpool_config::load_file(&path).unwrap();
    let class = fleet.class("office").unwrap();
    assert_eq!(class.policy.events.len(), 1);
    let mut form = PolicyForm::new(class, Vec::new());
    let at = form
        .fields
        .iter()
        .position(|f| f.key == "buffer.floor")
        .unwrap();
    form.fields[at].input = Input::new("5".into());
    form.revalidate();
    let policy = form.policy().unwrap();
    assert_eq!(policy.events, class.policy.events);
    deskpool_config::edit::save_policy_checked(&path, "office", &class.policy, &policy).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(
        saved.contains(&event[..event.find("\n\n").unwrap()]),
        "{saved}"
    );
    let reloaded = deskpool_config::load_file(&path).unwrap();
    assert_eq!(reloaded.class("office").unwrap().policy, policy);
}

#[test]
fn the_disconnect_grace_is_edited_and_held_to_the_files_range() {
    let mut form = demo_form("office");
    set(&mut form, "disconnect_grace_secs", "300");
    assert_eq!(form.policy().map(|p| p.disconnect_grace_secs), Ok(300));
    // One more than the file accepts: refused with the rule's own words.
    set(&mut form, "disconnect_grace_secs", "86401");
    let error = form.policy().unwrap_err();
    let (_, why) = error
        .problems
        .iter()
        .find(|(field, _)| field == "disconnect_grace_secs")
        .expect("the grace is out of range");
    assert_eq!(
        form.problem_for("disconnect_grace_secs"),
        Some(why.as_str())
    );
    set(&mut form, "disconnect_grace_secs", "-1");
    assert!(form.policy().is_err());
}
