//! TOSCA recipes for syncplane, compatible with XOS's TOSCA engine.
//!
//! # Brief overview
//!
//! - [`parse_recipe`] reads a recipe's YAML into a [`Recipe`] of
//!   [`NodeTemplate`]s (`tosca.nodes.<Model>`, properties, requirements).
//! - [`Recipe::plan`] checks it against the installed models (imports,
//!   types, properties, requirements) and orders templates so required ones
//!   come first. Applying the plan is the API's job, in one transaction.
//! - [`key_fields`] says how a template finds an existing object (XOS keys
//!   objects by `tosca_key` fields, else by `name`), so re-running a recipe
//!   updates instead of duplicating.
//! - [`custom_type`] generates the TOSCA type of a model.
#![deny(missing_docs)]

mod custom_type;
mod error;
mod recipe;

pub use custom_type::custom_type;
pub use error::{Error, Result};
pub use recipe::{NodeTemplate, Recipe, key_fields, parse_recipe};

#[cfg(test)]
mod tests {
    use super::*;
    use syncplane_xproto::Schema;

    fn schema() -> Schema {
        let core = syncplane_xproto::parse(
            "core.xproto",
            "message Service { required string name = 1 [tosca_key = True]; required string kind = 2 [default = \"generic\"]; required int32 backend_code = 3 [feedback_state = True]; }\n\
             message ServiceInstance { optional string name = 1; required manytoone owner->Service:instances = 2:1001; }",
        )
        .expect("parses");
        Schema::new().with_files(&[core]).expect("valid")
    }

    const RECIPE: &str = r#"tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - custom_types/service.yaml
topology_template:
  node_templates:
    si:
      type: tosca.nodes.ServiceInstance
      properties:
        name: one
      requirements:
        - owner:
            node: svc
            relationship: tosca.relationships.BelongsToOne
    svc:
      type: tosca.nodes.Service
      properties:
        name: S
"#;

    #[test]
    fn required_templates_are_planned_first() {
        let plan = parse_recipe(RECIPE)
            .expect("parses")
            .plan(&schema())
            .expect("plans");
        let names: Vec<_> = plan.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["svc", "si"]);
        assert_eq!(plan[1].requirements["owner"], "svc");
    }

    #[test]
    fn unknown_types_and_properties_are_named() {
        let bad_type = RECIPE.replace("tosca.nodes.Service\n", "tosca.nodes.service\n");
        let err = parse_recipe(&bad_type)
            .expect("parses")
            .plan(&schema())
            .expect_err("bad type");
        assert_eq!(
            err.to_string(),
            "node template `svc`: unknown type `tosca.nodes.service` (did you mean `tosca.nodes.Service`?)"
        );
        let bad_prop = RECIPE.replace("name: S", "colour: red");
        let err = parse_recipe(&bad_prop)
            .expect("parses")
            .plan(&schema())
            .expect_err("bad property");
        assert_eq!(
            err.to_string(),
            "node template `svc`: Service has no property `colour`"
        );
        let feedback = RECIPE.replace("name: S", "backend_code: 1");
        let err = parse_recipe(&feedback)
            .expect("parses")
            .plan(&schema())
            .expect_err("read-only");
        assert!(err.to_string().contains("maintained by syncplane"), "{err}");
    }

    #[test]
    fn yaml_errors_carry_a_position() {
        let err = parse_recipe("tosca_definitions_version: [\n").expect_err("bad yaml");
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn custom_types_list_writable_properties_and_links() {
        let text = custom_type(&schema(), "ServiceInstance").expect("known");
        assert!(text.contains("tosca.nodes.ServiceInstance:"), "{text}");
        assert!(text.contains("- owner:"), "{text}");
        let service = custom_type(&schema(), "Service").expect("known");
        assert!(service.contains("            kind:"), "{service}");
        assert!(!service.contains("backend_code"), "{service}");
        assert!(custom_type(&schema(), "Nope").is_none());
    }
}
