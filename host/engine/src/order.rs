//! The order in which models are synchronized.

use petgraph::algo::toposort;
use petgraph::graphmap::DiGraphMap;
use syncplane_xproto::Schema;

/// Orders `models` so that a model comes after the models its links point
/// to (a `ServiceInstance` after its owner `Service`). Models in a
/// dependency cycle keep their given order.
pub fn sync_order(schema: &Schema, models: &[String]) -> Vec<String> {
    sync_order_with(schema, models, &[])
}

/// As [`sync_order`], plus `extra` dependencies `(model, depends_on)` such
/// as a service's model-deps file declares (`{"User": [["Site", ...]]}`).
pub fn sync_order_with(
    schema: &Schema,
    models: &[String],
    extra: &[(String, String)],
) -> Vec<String> {
    let mut graph: DiGraphMap<usize, ()> = DiGraphMap::new();
    for i in 0..models.len() {
        graph.add_node(i);
    }
    for (model, dependency) in extra {
        for (i, m) in models.iter().enumerate() {
            for (j, d) in models.iter().enumerate() {
                if i != j && schema.is_a(m, model) && schema.is_a(d, dependency) {
                    graph.add_edge(j, i, ());
                }
            }
        }
    }
    for (i, model) in models.iter().enumerate() {
        for field in schema.all_fields(model) {
            let Some(target) = field.link_target() else {
                continue;
            };
            for (j, other) in models.iter().enumerate() {
                if i != j && schema.is_a(other, target) {
                    graph.add_edge(j, i, ());
                }
            }
        }
    }
    match toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|i| models[i].clone()).collect(),
        Err(_) => models.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_come_after_the_services_they_link_to() {
        let src = "message Service { required string name = 1; }\n\
                   message Instance { required manytoone owner->Service:instances = 1:1001; }\n\
                   message Hello (Service) { required string from = 1; }\n\
                   message HelloInstance (Instance) { required string to = 1; }";
        let file = syncplane_xproto::parse("m.xproto", src).expect("parses");
        let schema = Schema::new().with_files(&[file]).expect("valid");
        let order = sync_order(&schema, &["HelloInstance".into(), "Hello".into()]);
        assert_eq!(order, ["Hello", "HelloInstance"]);
    }

    #[test]
    fn a_model_deps_file_adds_dependencies_links_do_not_show() {
        let src =
            "message A { required string name = 1; }\nmessage B { required string name = 1; }";
        let file = syncplane_xproto::parse("m.xproto", src).expect("parses");
        let schema = Schema::new().with_files(&[file]).expect("valid");
        let models = ["A".to_owned(), "B".to_owned()];
        let extra = [("A".to_owned(), "B".to_owned())];
        assert_eq!(sync_order_with(&schema, &models, &extra), ["B", "A"]);
        let extra = [("B".to_owned(), "A".to_owned())];
        assert_eq!(sync_order_with(&schema, &models, &extra), ["A", "B"]);
    }
}
