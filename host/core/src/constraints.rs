//! Value constraints of xproto field options, checked on every write:
//! `choices`, `min_value`/`max_value`, `blank = False`, and the
//! `content_type`s `ip` and `url`. (`max_length`, types and integer
//! ranges are checked where values are converted, in `registry::to_sql`,
//! which also strips `content_type = "stripped"` strings.)

use serde_json::Value;
use syncplane_xproto::{Field, OptionValue};

use crate::error::{Error, Result};

/// Checks a non-null API value of `field` against its `choices`,
/// `min_value`/`max_value`, `blank` and `content_type` options.
///
/// # Errors
///
/// [`Error::InvalidField`] naming the field and the rule.
pub(crate) fn check(model: &str, field: &Field, value: &Value) -> Result<()> {
    if let Some(text) = value.as_str() {
        check_text(model, field, text)?;
    }
    if let Some(choices) = field.option_str("choices") {
        let allowed = choice_values(choices);
        // An option list syncplane cannot read is not enforced (the
        // xproto check warns of it), rather than refusing every value.
        if !allowed.is_empty() {
            let given = value.as_str();
            if !allowed.iter().any(|c| c.as_deref() == given) {
                let names: Vec<&str> = allowed.iter().flatten().map(String::as_str).collect();
                return Err(Error::invalid(
                    model,
                    &field.name,
                    format!("{value} is not one of the choices {}", names.join(", ")),
                ));
            }
        }
    }
    let Some(number) = value.as_f64() else {
        return Ok(());
    };
    let bound = |name: &str| match field.options.get(name) {
        Some(OptionValue::Int(n)) => Some(*n as f64),
        Some(OptionValue::Float(f)) => Some(*f),
        _ => None,
    };
    if let Some(min) = bound("min_value")
        && number < min
    {
        return Err(Error::invalid(
            model,
            &field.name,
            format!("{value} is below min_value {min}"),
        ));
    }
    if let Some(max) = bound("max_value")
        && number > max
    {
        return Err(Error::invalid(
            model,
            &field.name,
            format!("{value} is above max_value {max}"),
        ));
    }
    Ok(())
}

/// `blank = False` and the `ip` and `url` content types; an empty string
/// is a blank, not a malformed address.
fn check_text(model: &str, field: &Field, text: &str) -> Result<()> {
    let stripped = text.trim();
    if stripped.is_empty() {
        if field.options.get("blank").and_then(OptionValue::as_bool) == Some(false) {
            return Err(Error::invalid(model, &field.name, "may not be blank"));
        }
        return Ok(());
    }
    match field.option_str("content_type") {
        Some("ip") if stripped.parse::<std::net::IpAddr>().is_err() => Err(Error::invalid(
            model,
            &field.name,
            format!("{text:?} is not an IP address"),
        )),
        Some("url") => match url::Url::parse(stripped) {
            Ok(url) if url.has_host() => Ok(()),
            _ => Err(Error::invalid(
                model,
                &field.name,
                format!("{text:?} is not a URL (scheme://host/...)"),
            )),
        },
        _ => Ok(()),
    }
}

/// The stored values of a Django `choices` option,
/// `"(('vm', 'Virtual Machine'), (None, 'Default'))"`: the first element
/// of each pair; `None` for Python's `None`. Empty when the text is not
/// such a list.
fn choice_values(text: &str) -> Vec<Option<String>> {
    crate::choices::pairs(text)
        .map(|pairs| pairs.into_iter().map(|(value, _)| value).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_read_from_the_django_pairs() {
        assert_eq!(
            choice_values("(('vm', 'Virtual Machine'), ('container', 'Container'))"),
            [Some("vm".to_owned()), Some("container".to_owned())]
        );
        assert_eq!(
            choice_values("((None, 'Default'), ('host', 'Host'))"),
            [None, Some("host".to_owned())]
        );
        assert_eq!(
            choice_values("(('xos', 'XOS'), )"),
            [Some("xos".to_owned())]
        );
        assert!(choice_values("not a list").is_empty());
    }

    #[test]
    fn values_outside_choices_or_bounds_are_refused_naming_the_rule() {
        let file = syncplane_xproto::parse(
            "t.xproto",
            "message T {\n\
               optional string kind = 1 [choices = \"(('vm', 'VM'), ('container', 'C'))\"];\n\
               optional int32 vlan = 2 [min_value = 1, max_value = 4095];\n\
             }",
        )
        .expect("parses");
        let kind = &file.models[0].fields[0];
        let vlan = &file.models[0].fields[1];
        check("T", kind, &Value::from("vm")).expect("a choice");
        assert_eq!(
            check("T", kind, &Value::from("lxc"))
                .expect_err("not a choice")
                .to_string(),
            "T.kind: \"lxc\" is not one of the choices vm, container"
        );
        check("T", vlan, &Value::from(4095)).expect("in range");
        let file = syncplane_xproto::parse(
            "u.xproto",
            "message U {\n\
               optional string ip = 1 [content_type = \"ip\", blank = True];\n\
               optional string home = 2 [content_type = \"url\"];\n\
               required string name = 3 [blank = False];\n\
             }",
        )
        .expect("parses");
        let [ip, home, name] = [0, 1, 2].map(|i| &file.models[0].fields[i]);
        check("U", ip, &Value::from("10.0.0.1")).expect("v4");
        check("U", ip, &Value::from("2001:db8::1")).expect("v6");
        check("U", ip, &Value::from("")).expect("blank allowed");
        assert_eq!(
            check("U", ip, &Value::from("10.0.0.300"))
                .expect_err("bad")
                .to_string(),
            "U.ip: \"10.0.0.300\" is not an IP address"
        );
        check("U", home, &Value::from("http://onlab.us/")).expect("url");
        assert_eq!(
            check("U", home, &Value::from("onlab"))
                .expect_err("bad")
                .to_string(),
            "U.home: \"onlab\" is not a URL (scheme://host/...)"
        );
        assert_eq!(
            check("U", name, &Value::from("  "))
                .expect_err("blank")
                .to_string(),
            "U.name: may not be blank"
        );
        assert_eq!(
            check("T", vlan, &Value::from(5000))
                .expect_err("above")
                .to_string(),
            "T.vlan: 5000 is above max_value 4095"
        );
        assert_eq!(
            check("T", vlan, &Value::from(0))
                .expect_err("below")
                .to_string(),
            "T.vlan: 0 is below min_value 1"
        );
    }
}

#[cfg(test)]
mod write_tests {
    use serde_json::{Map, json};

    use crate::Core;

    fn map(value: serde_json::Value) -> Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    async fn core() -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        (dir, core)
    }

    #[tokio::test]
    async fn unique_fields_are_held_by_the_store_for_live_objects() {
        let (_dir, core) = core().await;
        let first = core
            .create("Site", map(json!({"name": "a"})))
            .await
            .expect("a");
        let error = core
            .create("Site", map(json!({"name": "a"})))
            .await
            .expect_err("taken");
        assert_eq!(error.to_string(), "Site.name: must be unique");
        let other = core
            .create("Site", map(json!({"name": "b"})))
            .await
            .expect("b");
        let error = core
            .update(other.id, map(json!({"name": "a"})))
            .await
            .expect_err("taken");
        assert_eq!(error.to_string(), "Site.name: must be unique");
        // A batch names the item that clashes, within the batch or with
        // what exists.
        let batch = |names: &[&str]| names.iter().map(|n| map(json!({"name": n}))).collect();
        let mut tx = core.begin().await.expect("begin");
        let error = tx
            .create_many("Site", batch(&["c", "d", "c"]))
            .await
            .expect_err("dup");
        assert_eq!(error.to_string(), "[2].name: must be unique");
        let error = tx
            .create_many("Site", batch(&["e", "a"]))
            .await
            .expect_err("taken");
        assert_eq!(error.to_string(), "[1].name: must be unique");
        drop(tx);
        // A deleted object waiting for its purge does not hold its name.
        core.delete(first.id).await.expect("delete");
        core.create("Site", map(json!({"name": "a"})))
            .await
            .expect("free again");

        // `unique_with`: the pair is unique, each half alone is not.
        core.create("Image", map(json!({"name": "ubuntu", "tag": "22.04"})))
            .await
            .expect("one");
        core.create("Image", map(json!({"name": "ubuntu", "tag": "24.04"})))
            .await
            .expect("two");
        let error = core
            .create("Image", map(json!({"name": "ubuntu", "tag": "24.04"})))
            .await
            .expect_err("pair taken");
        assert_eq!(
            error.to_string(),
            "Image.name: must be unique together with tag"
        );
    }

    #[tokio::test]
    async fn every_field_rule_is_checked_on_create_and_update() {
        let (_dir, core) = core().await;
        let site = core
            .create(
                "Site",
                map(json!({"name": "  padded  ", "site_url": "http://onlab.us/"})),
            )
            .await
            .expect("site");
        assert_eq!(
            site.fields["name"], "padded",
            "stripped strings are stripped"
        );
        let template = core
            .create("NetworkTemplate", map(json!({"name": "t"})))
            .await
            .expect("template");
        for (model, input, message) in [
            ("Site", json!({"name": null}), "Site.name: is required"),
            ("Site", json!({"name": " "}), "Site.name: may not be blank"),
            (
                "Site",
                json!({"name": "u", "site_url": "onlab"}),
                "Site.site_url: \"onlab\" is not a URL (scheme://host/...)",
            ),
            (
                "Image",
                json!({"name": "i", "kind": "lxc"}),
                "Image.kind: \"lxc\" is not one of the choices vm, container",
            ),
            (
                "Site",
                json!({"name": "n", "no_sync": true}),
                "Site.no_sync: is maintained by syncplane and cannot be written (got true)",
            ),
            (
                "Privilege",
                json!({"accessor_id": 1_i64 << 40, "object_id": 1, "object_type": "Site"}),
                "Privilege.accessor_id: 1099511627776 is outside the range of int32 (-2147483648 to 2147483647)",
            ),
        ] {
            let error = core.create(model, map(input)).await.expect_err(message);
            assert_eq!(error.to_string(), message);
        }
        let service = core
            .create("Service", map(json!({"name": "svc"})))
            .await
            .expect("service");
        let tag = json!({"service_id": service.id, "name": "t", "value": "v", "content_type": "c", "object_id": -1});
        let error = core.create("Tag", map(tag)).await.expect_err("negative");
        assert_eq!(
            error.to_string(),
            "Tag.object_id: -1 is outside the range of uint32 (0 to 4294967295)"
        );
        let error = core
            .update(template.id, map(json!({"visibility": "secret"})))
            .await
            .expect_err("not a choice");
        assert_eq!(
            error.to_string(),
            "NetworkTemplate.visibility: \"secret\" is not one of the choices public, private"
        );
        let error = core
            .update(site.id, map(json!({"write_protect": true})))
            .await
            .expect_err("bookkeeping");
        assert_eq!(
            error.to_string(),
            "Site.write_protect: is maintained by syncplane and cannot be written"
        );
    }
}
