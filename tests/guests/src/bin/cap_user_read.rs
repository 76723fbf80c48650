//! Looks up core `User` objects with `models.find`, which needs an explicit
//! `core.User` read grant that its service does not have.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

model! {
    /// Core's `User`, as far as this guest cares.
    pub struct User { pub email: String }
}

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        match syncplane_sdk::find::<User>("email", "admin@opencord.org") {
            Ok(users) => {
                let leaked: Vec<String> = users
                    .iter()
                    .map(|u| {
                        format!(
                            "{} (password field present: {})",
                            u.email,
                            u.fields.raw("password").is_some()
                        )
                    })
                    .collect();
                Err(Failed(format!("LEAKED: read users {leaked:?}")))
            }
            Err(StepError::Failed(m) | StepError::Deferred(m)) => {
                Err(Failed(format!("user read: {m}")))
            }
        }
    }
}
export_sync_step!(Step);
