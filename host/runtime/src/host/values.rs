//! `config` and `secrets`: the operator's values for the names the
//! manifest declares.

use super::{Fault, Kind};
use crate::state::StepState;

impl StepState {
    pub(crate) fn config_get(&mut self, name: String) -> Result<Option<String>, Fault> {
        self.enter()?;
        let ctx = &self.access.ctx;
        if !ctx.grants().config.contains(&name) {
            return Err(self.access.denied(
                Kind::Config,
                format!("read config `{name}`: the manifest does not declare it in [capabilities] config"),
            ));
        }
        Ok(ctx.config(&name))
    }

    pub(crate) fn secret_get(&mut self, name: String) -> Result<String, Fault> {
        self.enter()?;
        let ctx = &self.access.ctx;
        if !ctx.grants().secrets.contains(&name) {
            return Err(self.access.denied(
                Kind::Secret,
                format!("read secret `{name}`: the manifest does not declare it in [capabilities] secrets"),
            ));
        }
        ctx.secret(&name).ok_or_else(|| {
            Fault::NotFound(format!(
                "secret `{name}` of service `{}` is not set; the operator sets it with `syncplane service secret {} {name}`",
                ctx.service(),
                ctx.service()
            ))
        })
    }
}
