//! Service `chaina`'s model policy for `ChainAInstance`: creates the
//! `ChainBInstance` `<name>-b` of service `chainb` (or finds it) and links
//! it as the instance's `provider`; deletes it when the instance is
//! deleted. Needs `[capabilities.models] write = ["chainb.ChainBInstance"]`;
//! without it the host refuses and the policy fails with the refusal.
use syncplane_sdk::event::{ModelPolicy, declarative};
use syncplane_sdk::prelude::*;

model! {
    /// `ChainAInstance` from `models/chaina.xproto`.
    pub struct ChainAInstance { pub name: String, pub provider_id: Option<i64> }
}

struct ChainPolicy;

impl ModelPolicy for ChainPolicy {
    type Model = ChainAInstance;

    fn handle_create(a: &Object<ChainAInstance>) -> Result<(), String> {
        Self::handle_update(a)
    }

    fn handle_update(a: &Object<ChainAInstance>) -> Result<(), String> {
        if a.provider_id.is_some() {
            return Ok(());
        }
        let name = format!("{}-b", a.name);
        let b = match declarative::find("ChainBInstance", "name", name.as_str().into())?.first() {
            Some(found) => found.id,
            None => declarative::create("ChainBInstance", &[("name", name.as_str().into())])?,
        };
        let b = i64::try_from(b).map_err(|_| format!("id {b} is out of range"))?;
        declarative::update(a.id, &[("provider_id", b.into())], false)?;
        log::info!("chain linked {} to {} ({})", a.name, name, b);
        Ok(())
    }

    fn handle_delete(a: &Object<ChainAInstance>) -> Result<(), String> {
        if let Some(b) = a.provider_id {
            let b = u64::try_from(b).map_err(|_| format!("id {b} is out of range"))?;
            declarative::delete(b)?;
            log::info!("chain deleted the provider of {}", a.name);
        }
        Ok(())
    }
}

syncplane_sdk::export_model_policy!(ChainPolicy);
