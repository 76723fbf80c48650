//! TOSCA recipes for syncplane, compatible with XOS's TOSCA engine.
//!
//! # Brief overview
//!
//! - [`check`] walks a recipe's YAML against [`Limits`] (size, nesting,
//!   aliases) before anything is parsed; [`parse_recipe`] calls it first.
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
mod limits;
mod recipe;

pub use custom_type::custom_type;
pub use error::{Error, Result};
pub use limits::{LimitExceeded, Limits, MAX_RECIPE_BYTES, check};
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
    fn a_long_chain_of_requirements_is_planned_in_linear_time_without_recursion() {
        let core = syncplane_xproto::parse(
            "core.xproto",
            "message Node { required string name = 1; optional manytoone next->Node:previous = 2:1001; }",
        )
        .expect("parses");
        let schema = Schema::new().with_files(&[core]).expect("valid");
        // n0 requires n1, which requires n2, ...: the depth-first order
        // goes the whole chain deep before it places the first template.
        // Built directly: a recipe this large is past `max_templates`.
        let n = 50_000;
        let templates = (0..n)
            .map(|i| NodeTemplate {
                name: format!("n{i}"),
                model: "Node".into(),
                properties: serde_json::Map::from_iter([(
                    "name".to_owned(),
                    serde_json::Value::from(format!("n{i}")),
                )]),
                must_exist: false,
                requirements: if i + 1 < n {
                    [("next".to_owned(), format!("n{}", i + 1))].into()
                } else {
                    Default::default()
                },
                many: Default::default(),
            })
            .collect();
        let recipe = Recipe {
            description: None,
            imports: Vec::new(),
            templates,
        };
        let started = std::time::Instant::now();
        let plan = recipe.plan(&schema).expect("plans");
        assert_eq!(plan.len(), n);
        assert_eq!(plan[0].name, format!("n{}", n - 1));
        assert_eq!(plan[n - 1].name, "n0");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_recipe_with_more_templates_than_the_limit_is_refused() {
        let mut text = String::from(
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n",
        );
        for i in 0..10_001 {
            text.push_str(&format!("    s{i}: {{type: tosca.nodes.Service}}\n"));
        }
        let error = parse_recipe(&text).expect_err("too many");
        assert_eq!(
            error.to_string(),
            "recipe refused: 10001 node templates, more than 10000; split the recipe"
        );
    }

    #[test]
    fn templates_requiring_each_other_are_refused() {
        let cyclic = RECIPE.replace(
            "      properties:\n        name: S\n",
            "      properties:\n        name: S\n      requirements:\n        - site:\n            node: si\n",
        );
        let schema = {
            let core = syncplane_xproto::parse(
                "core.xproto",
                "message Service { required string name = 1 [tosca_key = True]; optional manytoone site->ServiceInstance:services = 2:1002; }\n\
                 message ServiceInstance { optional string name = 1; required manytoone owner->Service:instances = 2:1001; }",
            )
            .expect("parses");
            Schema::new().with_files(&[core]).expect("valid")
        };
        let err = parse_recipe(&cyclic)
            .expect("parses")
            .plan(&schema)
            .expect_err("cycle");
        assert!(err.to_string().contains("in a cycle"), "{err}");
        let missing = RECIPE.replace("node: svc", "node: nowhere");
        let err = parse_recipe(&missing)
            .expect("parses")
            .plan(&schema)
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "node template `si`: requirement `owner`: no node template named `nowhere` in this recipe"
        );
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
