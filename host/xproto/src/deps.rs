//! The model dependency graph in the original `model-deps` JSON format.

use std::collections::BTreeMap;

use crate::ir::FieldType;
use crate::schema::Schema;

/// One dependency: `[peer model, link field (src_port), reverse name (dst_port)]`.
pub type Dependency = [String; 3];

/// The model-deps graph of `models`: for each model (except `XOSBase` and
/// `Controller`), its forward links including inherited ones, as
/// `{"User": [["Site", "site", "users"]]}`. When a model `ControllerX` (or
/// `Controller` + the plural of X) exists, X also depends on it through each
/// of its links to X, as the original generator does. Lists are sorted, so
/// output is deterministic.
pub fn model_deps<'a>(
    schema: &Schema,
    models: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Vec<Dependency>> {
    let mut out = BTreeMap::new();
    for name in models {
        if name == "XOSBase" || name == "Controller" {
            continue;
        }
        let mut deps: Vec<Dependency> = schema
            .all_fields(name)
            .into_iter()
            .filter_map(|f| match &f.ty {
                FieldType::Link {
                    target, reverse, ..
                } => Some([
                    target.clone(),
                    f.name.clone(),
                    reverse.clone().unwrap_or_default(),
                ]),
                FieldType::Scalar { .. } => None,
            })
            .collect();
        for controller in [format!("Controller{name}"), format!("Controller{name}s")] {
            if schema.model(&controller).is_none() {
                continue;
            }
            for field in schema.all_fields(&controller) {
                if let FieldType::Link {
                    target, reverse, ..
                } = &field.ty
                    && target == name
                {
                    deps.push([
                        controller.clone(),
                        reverse.clone().unwrap_or_default(),
                        field.name.clone(),
                    ]);
                }
            }
        }
        deps.sort();
        deps.dedup();
        out.insert(name.to_owned(), deps);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    #[test]
    fn links_include_inherited_ones_and_controller_back_links() {
        let src = "message XOSBase { option abstract = True; }\n\
                   message Site (XOSBase) { required string name = 1; }\n\
                   message Service (XOSBase) { optional manytoone site->Site:service = 1:1001; }\n\
                   message Hello (Service) { required manytoone peer->Site:hellos = 1:1002; }\n\
                   message Image (XOSBase) { required string name = 1; }\n\
                   message ControllerImages (XOSBase) { required manytoone image->Image:controllerimages = 1:1003; }";
        let file = parse("m.xproto", src).expect("parses");
        let schema = Schema::new()
            .with_files(std::slice::from_ref(&file))
            .expect("valid");
        let deps = model_deps(&schema, file.models.iter().map(|m| m.name.as_str()));
        assert!(!deps.contains_key("XOSBase"));
        assert_eq!(
            deps["Hello"],
            [
                ["Site".to_owned(), "peer".to_owned(), "hellos".to_owned()],
                ["Site".to_owned(), "site".to_owned(), "service".to_owned()],
            ]
        );
        assert_eq!(
            deps["Image"],
            [[
                "ControllerImages".to_owned(),
                "controllerimages".to_owned(),
                "image".to_owned()
            ]]
        );
    }
}
